# The HYDATIS ML Scheduler image: the installed project and the `hydatis` command.
#
# One image runs every HYDATIS process on a cluster:
#   the extender (default):  hydatis shim --config /etc/hydatis/shim.yaml --host 0.0.0.0
#   a model server:          command: ["python", "-m", "serving.<module>"]
#   a pipeline component:    kfp runs it as components/_image.py's BASE_IMAGE
#
#   docker build --build-arg VERSION=0.1.0 -t ghcr.io/hydatis/ml-scheduler:0.1.0 .
#
# The tag is the package version (pyproject.toml), which is also what components/_image.py
# and infra/base/shim-deployment.yaml name.
FROM python:3.11.13-slim-bookworm

ARG VERSION=0.1.0
# torch is installed first from its CPU-only index, as the Makefile does: an open range on
# the default index would pull the multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

LABEL org.opencontainers.image.title="hydatis-ml-scheduler" \
      org.opencontainers.image.description="HYDATIS ML Scheduler: kube-scheduler extender, model servers and MLOps pipeline steps" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.13-slim-bookworm"

# PYTHONPATH: pipelines/, katib/ and monitoring/ are not packaged; the CLI imports them
# from the source tree in /app.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    HYDATIS_HEALTH_URL=http://127.0.0.1:8888/healthz

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 hydatis \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/hydatis --create-home \
      --shell /usr/sbin/nologin hydatis

WORKDIR /app

# The pinned set first, in its own layer: it changes far less often than the code.
COPY constraints.txt ./
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" -c constraints.txt \
      torch==2.13.0+cpu

COPY pyproject.toml README.md ./
COPY hydatis ./hydatis
COPY cli ./cli
COPY simulator ./simulator
COPY components ./components
COPY serving ./serving
COPY scheduler_shim ./scheduler_shim
COPY pipelines ./pipelines
COPY katib ./katib
COPY monitoring ./monitoring
COPY operations ./operations
COPY feature_repo ./feature_repo
# The code stays root-owned (read-only to the service user); only the Feast repo, where
# `feast apply` writes its registry (data/, a volume on Kubernetes), belongs to it.
RUN pip install --no-cache-dir -c constraints.txt . \
 && mkdir -p /app/feature_repo/data \
 && chown -R 10001:10001 /app/feature_repo

USER 10001:10001

# 8888: the extender; 8080: a KServe model server's HTTP port.
EXPOSE 8888 8080

# Kubernetes ignores HEALTHCHECK (the manifests' probes do that job); this serves plain
# `docker run`. A model server container sets HYDATIS_HEALTH_URL to its own port.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HYDATIS_HEALTH_URL'], timeout=2)"]

ENTRYPOINT ["hydatis"]
CMD ["shim", "--config", "/etc/hydatis/shim.yaml", "--host", "0.0.0.0"]
