# Set-up and the two jobs a newcomer runs: `make demo` (the head-kill experiment against
# the local sandbox, then its report) and `make test` (lint, types and every test).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/$(shell date +%Y%m%d-%H%M%S)
SANDBOX_DIR ?= $(CURDIR)/.sandbox
SERVE_PORT ?= 8000
DASHBOARD_PORT ?= 8265

.PHONY: venv demo test lint unit integration controlplane e2e node-deps clean

$(STAMP): setup.cfg pyproject.toml lab/setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[sandbox,dev]' -e ./lab
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	RUN_DIR=$(RUN_DIR) SANDBOX_DIR=$(SANDBOX_DIR) BIN=$(BIN) SERVE_PORT=$(SERVE_PORT) \
		DASHBOARD_PORT=$(DASHBOARD_PORT) bash scripts/demo.sh

# The real Kubernetes control plane, kube-proxy and KubeRay operator, built once per machine from
# the Go modules pinned in lab/controlplane/go.mod (first build ~8 min on 2 cores, then cached),
# and CoreDNS from lab/coredns/go.mod (its own module: ~1.5 min more), and kube-router (the
# node's NetworkPolicy engine) from lab/netpol/go.mod (its own module: ~3-7 min more), and
# Prometheus (Kubernetes service discovery only) from lab/prometheus/go.mod (~2.5-6 min more),
# and the Pushgateway from lab/pushgateway/go.mod (~1 min more).
controlplane:
	bash lab/controlplane/build.sh >/dev/null
	bash lab/coredns/build.sh >/dev/null
	bash lab/netpol/build.sh >/dev/null
	bash lab/prometheus/build.sh >/dev/null
	bash lab/pushgateway/build.sh >/dev/null

# Kubernetes' own e2e tests (e2e.test), agnhost and Debian's busybox-static, for the node's
# conformance subset (benchmarks/conformance.py; its fast part runs in `make test`): built
# once per machine from lab/e2e/go.mod (~10 min more on 2 cores the first time).
e2e: controlplane
	bash lab/e2e/build.sh >/dev/null

# The node's Service path needs Debian's nftables (kube-proxy's nftables mode, the node's
# forward filter); its tests read conntrack; Kubernetes' e2e tests run `dig` and `nc -v`
# (their images' bind-tools and netcat-openbsd); kube-router's NetworkPolicy firewall runs
# iptables (nf_tables backend) and ipset; the Sentinel-backed Redis (`--redis sentinel`, image
# redis:7.0.15) runs redis-tools' Redis 7.0. Installed when missing and root, else a hint.
NODE_DEBS := nftables conntrack bind9-dnsutils netcat-openbsd iptables ipset redis-tools
node-deps:
	@command -v nft >/dev/null && command -v conntrack >/dev/null && command -v dig >/dev/null \
	    && command -v nc.openbsd >/dev/null && command -v iptables >/dev/null \
	    && command -v ipset >/dev/null && [ -x /usr/bin/redis-check-rdb ] || \
	{ [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(NODE_DEBS) >/dev/null; } || \
	echo "the lab's node needs: sudo apt-get install $(NODE_DEBS)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --config .importlinter

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP) controlplane e2e node-deps
	$(BIN)/pytest tests/integration -q -rfEs

test: lint controlplane e2e node-deps
	$(BIN)/pytest tests -q -rfEs --durations=15

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
