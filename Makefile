# The interface to the project: `make demo`, `make test`, `make lint`, `make bench`, `make image`,
# `make e2e`.
SHELL := /bin/bash
CARGO ?= cargo
# Reference CNI plugins (Debian's containernetworking-plugins) and iproute2 are needed by the
# namespace tests and the quickstart; they are installed here when missing.
CNI_PLUGIN_DIR ?= /usr/lib/cni

.PHONY: all build test lint demo deps fmt bench release release-bins image image-deps e2e e2e-deps test-vm vm-deps

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

# The e2e crate (real containerd) has its own target, `make e2e`.
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
	echo "$(CARGO) test --workspace --exclude plexus-e2e --all-targets --no-fail-fast"; \
	CNI_PLUGIN_DIR=$(CNI_PLUGIN_DIR) $(CARGO) test --workspace --exclude plexus-e2e --all-targets --no-fail-fast; rc=$$?; \
	after="$$($(host_state))"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "make test: FAILED: the suite changed the host's CNI state ($(HOST_STATE)); a test wrote outside its temp dir:" >&2; \
	  diff <(echo "$$before") <(echo "$$after") >&2; \
	  rc=1; \
	fi; \
	exit $$rc

# protoc: the e2e crate's CRI client (k8s-cri) compiles the CRI protos at build time.
lint: protoc
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
	@CNI_PLUGIN_DIR=$(CNI_PLUGIN_DIR) target/debug/examples/quickstart target/debug/plexus

# The binary for nodes: statically linked and not position-independent, like the Go CNI plugins
# beside it. It is copied from an image onto hosts whose libc may differ, and a static binary
# starts ~0.4 ms sooner with a third of the page faults (no loader, no relocations).
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RELEASE_DIR := target/$(HOST_TRIPLE)/release
# Every static build uses exactly these flags, so no build invalidates another's artifacts.
RELEASE_RUSTFLAGS := -C target-feature=+crt-static -C relocation-model=static
release:
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" \
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

# Installs what is missing from Debian, as root; $(1): commands to look for, $(2): packages.
define apt_install
	@missing=""; for c in $(1); do command -v $$c >/dev/null || missing="$(2)"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install $$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "apt-get install $$missing failed" >&2; exit 1; }; \
	fi
endef

.PHONY: protoc
protoc:
	$(call apt_install,protoc,protobuf-compiler)

# The container image: the static release binaries FROM scratch (Containerfile), built offline
# with buildah, stored in local container storage (podman and buildah see it) and written as an
# OCI archive. deploy/image/kustomization.yaml's `images:` entry names $(IMAGE_NAME):$(VERSION)
# (tests/deploy.rs checks it).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
IMAGE_NAME ?= localhost/plexus
IMAGE := $(IMAGE_NAME):$(VERSION)
IMAGE_ARCHIVE := target/plexus-$(VERSION).oci.tar
# The binaries the image carries (from `make release`): the plugin and the node agent.
IMAGE_BINS := plexus plexus-agent
IMAGE_MAX_BYTES := 12000000

image-deps:
	$(call apt_install,buildah,buildah)

# Only the binaries (the bench example is not needed in the image).
release-bins:
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" \
	  $(CARGO) build --release --target $(HOST_TRIPLE) --bins

image: release-bins image-deps
	rm -rf target/image && mkdir -p target/image/bin
	for b in $(IMAGE_BINS); do install -m 0755 $(RELEASE_DIR)/$$b target/image/bin/$$b; done
	buildah build --quiet --layers=false --pull=never -f Containerfile \
	  --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  -t $(IMAGE) . >/dev/null
	rm -f $(IMAGE_ARCHIVE)
	buildah push --quiet $(IMAGE) oci-archive:$(IMAGE_ARCHIVE):$(IMAGE)
	@size=$$(stat -c %s $(IMAGE_ARCHIVE)); \
	echo "image $(IMAGE): $(IMAGE_ARCHIVE), $$size bytes (limit $(IMAGE_MAX_BYTES))"; \
	[ $$size -le $(IMAGE_MAX_BYTES) ] || { echo "image larger than $(IMAGE_MAX_BYTES) bytes" >&2; exit 1; }

# The end-to-end test (crates/e2e): a real containerd from Debian, started by the test with its
# own scratch root, state and socket, runs the DaemonSet's install command from the image and
# creates pods through the CRI. Its pause image is built here from a tiny static binary.
E2E_DIR := target/e2e
e2e-deps: deps protoc
	$(call apt_install,containerd ctr runc,containerd runc)

e2e: image e2e-deps
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" \
	  $(CARGO) build --release --target $(HOST_TRIPLE) -p plexus-e2e-pause --bin pause
	rm -rf $(E2E_DIR)/pause && mkdir -p $(E2E_DIR)/pause
	install -m 0755 target/$(HOST_TRIPLE)/release/pause $(E2E_DIR)/pause/pause
	buildah build --quiet --layers=false --pull=never -f crates/e2e-pause/Containerfile \
	  -t localhost/plexus-e2e-pause:1 $(E2E_DIR)/pause >/dev/null
	rm -f $(E2E_DIR)/pause.oci.tar
	buildah push --quiet localhost/plexus-e2e-pause:1 oci-archive:$(E2E_DIR)/pause.oci.tar:localhost/plexus-e2e-pause:1
	PLEXUS_E2E_IMAGE_ARCHIVE=$(abspath $(IMAGE_ARCHIVE)) PLEXUS_E2E_IMAGE=$(IMAGE) \
	PLEXUS_E2E_PAUSE_ARCHIVE=$(abspath $(E2E_DIR)/pause.oci.tar) PLEXUS_E2E_PAUSE_IMAGE=localhost/plexus-e2e-pause:1 \
	CNI_PLUGIN_DIR=$(CNI_PLUGIN_DIR) \
	  $(CARGO) test -p plexus-e2e --no-fail-fast -- --test-threads=1
