#!/usr/bin/env bash
# The VM lane (`make test-vm`): proves ipvlan and vlan on real Debian kernels, which the host's
# kernel cannot create. For each kernel package given (a Debian package name, e.g.
# `linux-image-amd64` or `linux-image-6.12-amd64`; a metapackage is resolved to the image it
# depends on), it
#   1. downloads the package with `apt-get download` and unpacks it with `dpkg -x` into
#      target/vm (cached; nothing is installed on the host),
#   2. takes its vmlinuz and the modules the tests need (plus their dependencies, by modinfo),
#   3. boots it under qemu (TCG) with an initramfs holding busybox, iproute2's `ip`, the
#      reference CNI plugins, the plexus binary and the guest driver (examples/vm_guest) with
#      the shared libraries they link,
#   4. reads the serial console: the guest driver's summary line ("vm_guest: N passed, N failed")
#      and the init's end marker. A guest that panics, hangs past VM_TIMEOUT seconds, or ends
#      without both lines is a failure.
# Environment: VM_DIR (default target/vm), VM_PLEXUS, VM_GUEST (the binaries to test; default
# the debug builds), VM_TIMEOUT (seconds per guest, default 900), VM_FILTER (run only the guest
# cases whose name contains it), VM_JOBS (guests at a time, default one per core).
set -euo pipefail
cd "$(dirname "$0")/../.."

VM_DIR=${VM_DIR:-target/vm}
VM_PLEXUS=${VM_PLEXUS:-target/debug/plexus}
VM_GUEST=${VM_GUEST:-target/debug/examples/vm_guest}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_FILTER=${VM_FILTER:-}
# Reference plugins the guest cases run, from Debian's containernetworking-plugins.
PLUGINS="bridge host-local static ipvlan vlan macvlan loopback"
# Link types the cases create (their dependencies are found with modinfo).
MODULES="8021q ipvlan dummy macvlan veth bridge"

die() {
	echo "test-vm: $*" >&2
	exit 1
}

[ $# -gt 0 ] || die "usage: $0 KERNEL_PACKAGE..."
for f in "$VM_PLEXUS" "$VM_GUEST"; do
	[ -x "$f" ] || die "$f is not built (make test-vm builds it)"
done
mkdir -p "$VM_DIR/debs" "$VM_DIR/kernels"
VM_DIR=$(realpath "$VM_DIR")

# The concrete linux-image package behind a (meta)package name.
resolve() {
	local dep
	if ! apt-cache show "$1" >/dev/null 2>&1; then
		apt-get update -qq
	fi
	dep=$(apt-cache depends "$1" | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
	echo "${dep:-$1}"
}

# Downloads (once) the .deb of concrete package $1 into its own cache directory; prints its path.
fetch() {
	local dir="$VM_DIR/debs/$1" deb
	mkdir -p "$dir"
	deb=$(find "$dir" -name '*.deb' | head -n1)
	if [ -z "$deb" ]; then
		echo "test-vm: downloading $1" >&2
		# apt's download sandbox user cannot write under target/: fetch as root, quietly.
		(cd "$dir" && apt-get download -qq "$1" 2>&1 | grep -v 'unsandboxed' >&2 || true)
		deb=$(find "$dir" -name '*.deb' | head -n1)
		[ -n "$deb" ] || die "apt-get download $1 failed"
	fi
	echo "$deb"
}

# Copies module $2 (and first its dependencies) from unpacked tree $1 into $3, decompressed,
# appending its name to $3/load-order once.
add_module() {
	local tree=$1 name=$2 out=$3 file dep
	grep -qx "$name" "$out/load-order" 2>/dev/null && return 0
	if grep -q "/$name.ko" "$tree"/lib/modules/*/modules.builtin 2>/dev/null; then
		return 0
	fi
	file=$(find "$tree/lib/modules" -name "$name.ko" -o -name "$name.ko.*" | head -n1)
	[ -n "$file" ] || die "module $name is not in the kernel package"
	for dep in $(modinfo -F depends "$file" | tr ',' ' '); do
		add_module "$tree" "$dep" "$out"
	done
	case "$file" in
	*.xz) xz -dc "$file" >"$out/$name.ko" ;;
	*.zst) zstd -qdc "$file" >"$out/$name.ko" ;;
	*.gz) gzip -dc "$file" >"$out/$name.ko" ;;
	*) cp "$file" "$out/$name.ko" ;;
	esac
	echo "$name" >>"$out/load-order"
}

# Unpacks kernel package $1 (once): $VM_DIR/kernels/$1/{vmlinuz,modules.cpio,release}.
prepare_kernel() {
	local pkg=$1 dir="$VM_DIR/kernels/$1" deb tree m
	[ -f "$dir/ready" ] && return 0
	deb=$(fetch "$pkg")
	rm -rf "$dir"
	mkdir -p "$dir/root/lib/modules"
	tree=$(mktemp -d "$VM_DIR/unpack.XXXXXX")
	dpkg -x "$deb" "$tree"
	cp "$tree"/boot/vmlinuz-* "$dir/vmlinuz"
	ls "$tree/lib/modules" >"$dir/release"
	: >"$dir/root/lib/modules/load-order"
	for m in $MODULES; do
		add_module "$tree" "$m" "$dir/root/lib/modules"
	done
	rm -rf "$tree"
	(cd "$dir/root" && find . -print0 | cpio --null -o -H newc --quiet) >"$dir/modules.cpio"
	rm -rf "$dir/root"
	touch "$dir/ready"
}

# Copies executable $1 to $2 inside the stage, with every shared library it loads.
# $3 = strip: drop the debug info of our own (debug-built) binaries.
stage_elf() {
	local src=$1 dst="$STAGE$2" lib
	mkdir -p "$(dirname "$dst")"
	if [ "${3:-}" = strip ]; then
		strip --strip-debug -o "$dst" "$src" 2>/dev/null || cp -L "$src" "$dst"
	else
		cp -L "$src" "$dst"
	fi
	for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$STAGE$lib" ] && continue
		mkdir -p "$STAGE$(dirname "$lib")"
		cp -L "$lib" "$STAGE$lib"
	done
}

# The part of the initramfs every kernel shares: programs, libraries, the init.
build_common() {
	local p busybox
	STAGE="$VM_DIR/stage"
	rm -rf "$STAGE"
	mkdir -p "$STAGE"/{bin,dev,proc,sys,run,tmp,etc,var/lib,usr/lib/cni,lib/modules}
	busybox=$(command -v busybox) || die "busybox is missing (busybox-static)"
	ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (install busybox-static)"
	cp "$busybox" "$STAGE/bin/busybox"
	install -m 0755 tests/vm/init "$STAGE/init"
	mknod "$STAGE/dev/console" c 5 1
	stage_elf "$(command -v ip)" /usr/sbin/ip
	for p in $PLUGINS; do
		stage_elf "/usr/lib/cni/$p" "/usr/lib/cni/$p"
	done
	stage_elf "$VM_PLEXUS" /usr/local/bin/plexus strip
	stage_elf "$VM_GUEST" /usr/local/bin/vm_guest strip
	(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet) >"$VM_DIR/common.cpio"
	rm -rf "$STAGE"
}

# Boots kernel package $1 with initramfs $2; the serial console goes to $VM_DIR/$1.log, qemu's
# exit status (124: timed out) to $VM_DIR/$1.rc, the guest's run time to $VM_DIR/$1.time.
boot() {
	local pkg=$1 dir="$VM_DIR/kernels/$1" log="$VM_DIR/$1.log" started=$SECONDS rc=0
	# Nothing of an earlier run may be judged: no log and a failure until qemu has run.
	: >"$log"
	echo 1 >"$VM_DIR/$pkg.rc"
	echo 0 >"$VM_DIR/$pkg.time"
	cat "$VM_DIR/common.cpio" "$dir/modules.cpio" >"$2" || return 0
	timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m 512 -nographic \
		-no-reboot -kernel "$dir/vmlinuz" -initrd "$2" \
		-append "console=ttyS0 panic=-1 quiet${VM_FILTER:+ vm_guest=$VM_FILTER}" \
		</dev/null 2>&1 | sed -u 's/\r$//' >"$log" || rc=$?
	echo "$rc" >"$VM_DIR/$pkg.rc"
	echo "$((SECONDS - started))" >"$VM_DIR/$pkg.time"
}

# Judges the run of kernel package $1 from its files; adds its counts to PASSED and FAILED (a
# guest that panicked, timed out, or did not report counts one failure more). Fails unless the
# guest reported a clean end and a summary without failures.
judge() {
	local pkg=$1 log="$VM_DIR/$1.log" rc end summary broken="" passed failed
	rc=$(cat "$VM_DIR/$pkg.rc")
	echo "test-vm: $pkg ($(cat "$VM_DIR/kernels/$pkg/release")): guest ran $(cat "$VM_DIR/$pkg.time") s"
	end=$(sed -n 's/^plexus-vm: end //p' "$log" | tail -n1)
	summary=$(grep -E '^vm_guest: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1 || true)
	read -r _ passed _ failed _ <<<"${summary:-x 0 x 0 x}"
	PASSED=$((PASSED + passed))
	FAILED=$((FAILED + failed))
	if [ "$rc" = 124 ]; then
		broken="timed out after ${VM_TIMEOUT}s"
	elif [ "$rc" != 0 ]; then
		broken="qemu exited $rc"
	elif grep -q 'Kernel panic' "$log"; then
		broken="kernel panic"
	elif [ -z "$summary" ]; then
		broken="no summary from the guest driver"
	elif [ "$end" != exit-0 ] && [ "$failed" = 0 ]; then
		broken="the guest ended with '${end:-nothing}'"
	fi
	if [ -n "$broken" ]; then
		echo "test-vm: $pkg: $broken"
		FAILED=$((FAILED + 1))
		return 1
	fi
	[ "$passed" -gt 0 ] && [ "$failed" = 0 ] && [ "$end" = exit-0 ]
}

build_common
PKGS=()
for meta in "$@"; do
	PKGS+=("$(resolve "$meta")")
	prepare_kernel "${PKGS[-1]}"
done
# One guest per core at a time (TCG runs a guest on one host thread); the consoles are shown
# when all are done.
VM_JOBS=${VM_JOBS:-$(nproc)}
running=0
for pkg in "${PKGS[@]}"; do
	echo "test-vm: booting $pkg, up to ${VM_TIMEOUT}s"
	boot "$pkg" "$VM_DIR/$pkg.cpio" &
	running=$((running + 1))
	if [ "$running" -ge "$VM_JOBS" ]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait || true
PASSED=0 FAILED=0 BAD=""
for pkg in "${PKGS[@]}"; do
	echo "test-vm: ---- $pkg: serial console ----"
	if grep -q 'plexus-vm: kernel' "$VM_DIR/$pkg.log"; then
		sed -n '/plexus-vm: kernel/,$p' "$VM_DIR/$pkg.log"
	else
		tail -n 60 "$VM_DIR/$pkg.log"
	fi
	judge "$pkg" || BAD="$BAD $pkg"
	rm -f "$VM_DIR/$pkg.cpio"
done
echo "test-vm: kernels: ${PKGS[*]}"
echo "test-vm: $PASSED passed, $FAILED failed"
[ -z "$BAD" ] || die "failed on:$BAD"
