# The interface to the project: `make demo`, `make test`, `make lint`, `make bench`.
SHELL := /bin/bash
CARGO ?= cargo
# Reference CNI plugins (Debian's containernetworking-plugins) and iproute2 are needed by the
# namespace tests and the quickstart; they are installed here when missing.
CNI_PLUGIN_DIR ?= /usr/lib/cni

.PHONY: all build test lint demo deps fmt bench

all: build

build:
	$(CARGO) build

deps:
	@missing=""; \
	[ -x $(CNI_PLUGIN_DIR)/bridge ] && [ -x $(CNI_PLUGIN_DIR)/macvlan ] && [ -x $(CNI_PLUGIN_DIR)/host-local ] || missing="$$missing containernetworking-plugins"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v ping >/dev/null || missing="$$missing iputils-ping"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ "$$(id -u)" = 0 ] || { echo "make test / make demo need root: the tests create network namespaces" >&2; exit 1; }

test: deps
	$(CARGO) test --all-targets --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

demo: deps
	$(CARGO) build --quiet --bins --examples
	$(CARGO) run --quiet --example quickstart -- target/debug/plexus

# What plexus adds on top of its delegates (time, API requests, memory, size): see README's
# Performance section. Release build (fat LTO: a few minutes); the run itself takes 1-3 minutes.
bench: deps
	$(CARGO) build --release --bins --examples
	$(CARGO) run --release --example bench -- target/release/plexus
