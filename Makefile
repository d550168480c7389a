# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
OUT    ?= out/demo
STAMP  := $(VENV)/.installed
# Servers the integration tests start on loopback (Debian packages).
SERVICES := prometheus promtool redis-server prometheus-alertmanager amtool prometheus-pushgateway

.PHONY: venv demo test test-slow lint services bench bench-models image manifests clean

# constraints.txt pins the whole tested set; pyproject.toml names what the code imports.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an open range would pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hydatis demo --out $(OUT)

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

test: lint services
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
	kubectl kustomize infra/overlays/dev >/dev/null && kubectl kustomize infra/overlays/prod >/dev/null
	@echo "infra/overlays/dev and infra/overlays/prod build"

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
