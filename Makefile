# The interface to the project: `make demo`, `make test`, `make lint`, `make bench`.
SHELL := /bin/bash
CARGO ?= cargo
# Reference CNI plugins (Debian's containernetworking-plugins) and iproute2 are needed by the
# namespace tests and the quickstart; they are installed here when missing.
CNI_PLUGIN_DIR ?= /usr/lib/cni

.PHONY: all build test lint demo deps fmt bench release test-vm vm-deps

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

# Every test keeps its state under its own temp dir. make test proves it: the host's CNI state
# (host-local's default dataDir, plexus's default journal) must be exactly as it was before the
# suite (paths, types, modes, owners, sizes, mtimes, contents), else the target fails.
HOST_STATE := /var/lib/cni /var/lib/plexus
host_state = for d in $(HOST_STATE); do \
	  if [ -e $$d ]; then \
	    find $$d -printf '%p %y %m %U:%G %s %T@ %l\n'; \
	    find $$d -type f -exec sha256sum {} +; \
	  else echo "$$d absent"; fi; \
	done | LC_ALL=C sort

test: deps
	@before="$$($(host_state))"; \
	echo "$(CARGO) test --workspace --all-targets --no-fail-fast"; \
	$(CARGO) test --workspace --all-targets --no-fail-fast; rc=$$?; \
	after="$$($(host_state))"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "make test: FAILED: the suite changed the host's CNI state ($(HOST_STATE)); a test wrote outside its temp dir:" >&2; \
	  diff <(echo "$$before") <(echo "$$after") >&2; \
	  rc=1; \
	fi; \
	exit $$rc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The first build compiles every dependency (minutes on 2 cores): say so, and let cargo show
# its progress. Colours only when stdout is a terminal.
demo: deps
	@echo "make demo: building plexus and the quickstart (the first build compiles every dependency: a few minutes)"
	@if [ -t 1 ]; then color=auto; else color=never; fi; \
	echo "$(CARGO) build --bins --examples --color $$color"; \
	$(CARGO) build --bins --examples --color $$color
	@echo "make demo: running the quickstart (target/debug/examples/quickstart)"
	@target/debug/examples/quickstart target/debug/plexus

# The binary for nodes: statically linked and not position-independent, like the Go CNI plugins
# beside it. It is copied from an image onto hosts whose libc may differ, and a static binary
# starts ~0.4 ms sooner with a third of the page faults (no loader, no relocations).
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RELEASE_DIR := target/$(HOST_TRIPLE)/release
release:
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
	  $(CARGO) build --release --target $(HOST_TRIPLE) --bins --examples
	@echo "built $(RELEASE_DIR)/plexus"

# What plexus adds on top of its delegates (time, API requests, memory, size): see README's
# Performance section. Release build (fat LTO: a few minutes); the run itself takes 1-3 minutes.
bench: deps release
	$(RELEASE_DIR)/examples/bench $(RELEASE_DIR)/plexus $(BENCH_ARGS)

# The VM lane: ipvlan and vlan proven on real Debian kernels booted under qemu (TCG), since this
# host's kernel has neither (README, "Built-in macvlan, ipvlan and vlan"). tests/vm/run.sh
# downloads each kernel package with apt into target/vm (cached, never installed), boots it with
# the reference plugins, plexus and examples/vm_guest, and fails on any failed case, panic,
# hang or missing report. VM_KERNELS: bookworm's 6.1 and its newest (6.12, newer than
# bookworm-backports' 6.12 build); VM_FILTER=NAME runs only the cases whose name contains NAME.
VM_KERNELS ?= linux-image-amd64 linux-image-6.12-amd64
vm-deps: deps
	@missing=""; \
	command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86"; \
	dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	command -v cpio >/dev/null || missing="$$missing cpio"; \
	command -v modinfo >/dev/null || missing="$$missing kmod"; \
	command -v strip >/dev/null || missing="$$missing binutils"; \
	command -v xz >/dev/null || missing="$$missing xz-utils"; \
	command -v zstd >/dev/null || missing="$$missing zstd"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test-vm: vm-deps
	$(CARGO) build --bin plexus --example vm_guest
	VM_FILTER="$(VM_FILTER)" tests/vm/run.sh $(VM_KERNELS)
