#!/usr/bin/env bash
# Runs a command as root inside a stock Debian kernel booted in qemu (TCG,
# software emulation: KVM here cannot run stock kernels). This host's kernel
# has no BPF LSM and refuses trampoline programs; Debian's 6.1 and 6.12 have
# both, so the tests that need them run in such a guest.
#
#   scripts/guest.sh install
#       installs qemu-system-x86 (apt) and fetches, without installing them,
#       the newest Debian 6.1 and 6.12 kernel packages apt can reach and a
#       static busybox; builds what a boot needs under target/guest/kernels/.
#       Idempotent.
#   scripts/guest.sh run KERNEL [--lsm LIST] [--share DIR]... [--results DIR]
#                               [--console] [--] CMD...
#       boots KERNEL (6.1 or 6.12), runs `sh -c "CMD..."` in the host's
#       current directory and prints its stdout and stderr; exits with its
#       exit status.
#       --lsm LIST    boots with lsm=LIST (otherwise the kernel's default list,
#                     which on Debian includes bpf)
#       --share DIR   mounts the host directory DIR read-write at the same
#                     path in the guest (repeatable)
#       --results DIR also leaves command, stdout, stderr and status (the exit
#                     status; absent when the harness failed) in DIR
#       --console     prints the guest's console (kernel messages) to stderr
#   scripts/guest.sh kernels
#       lists the installed kernels with their Debian package and version
#
# The guest sees the host's root filesystem read-only (9p), at the same
# paths, with its own proc, sysfs, devtmpfs, cgroup2 at /sys/fs/cgroup, bpffs,
# securityfs, tracefs, debugfs, loopback up and its own tmpfs on /tmp, /run,
# /var/tmp and /dev/shm: host files under those are not visible in the guest
# (put a test's inputs under target/, e.g. CARGO_TARGET_TMPDIR, or --share a
# directory). The command runs with a minimal environment (PATH, HOME) and
# stdin from /dev/null.
#
# Exit status: the command's; 2 on usage errors or a missing installation;
# 124 when the guest did not power off within PLUMBLINE_GUEST_TIMEOUT seconds
# (default 600; only a guard against hangs); 125 when the guest ended without
# a result (the console is printed).
#
# State lives in $PLUMBLINE_GUEST_DIR (default target/guest).
# PLUMBLINE_GUEST_APT=private makes install look for the kernels only in a
# private apt configuration (bookworm, -updates, -security, -backports under
# target/guest/apt) instead of the host's; it is also the fallback when the
# host's apt cannot see a kernel series.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${PLUMBLINE_GUEST_DIR:-$root/target/guest}
timeout_s=${PLUMBLINE_GUEST_TIMEOUT:-600}
qemu=qemu-system-x86_64
kernels=(6.1 6.12)
# The system's python (the one on PATH may be a pyenv shim).
python=/usr/bin/python3
[ -x "$python" ] || python=python3

log() { printf '[guest] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# Debian package names of each series; the newest one apt knows is used.
package_pattern() {
  case $1 in
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+(deb12|bpo)-amd64$' ;;
    *) die "unknown kernel '$1' (known: ${kernels[*]})" ;;
  esac
}

# Modules the initramfs loads (with their dependencies): Debian builds 9p
# (and on 6.1 virtio_pci) as modules. Built-in ones are skipped.
initramfs_modules=(virtio_pci 9pnet_virtio 9p)

# ---------------------------------------------------------------- the guest's /init

# PID 1 in the guest: mounts the host's root over 9p, chroots into it to run
# the command, writes its output and status to the results share, powers off.
# Its text is hashed into the initramfs's stamp: changing it here rebuilds the
# initramfs at the next run.
IFS= read -r -d '' guest_init <<'INIT' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
say() { echo "[guest-init] $*" >/dev/console; }
halt() { sync; poweroff -f; reboot -f; sleep 3600; }
die() { say "$*"; halt; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do
  insmod "/lib/modules/$m" || die "insmod $m failed"
done </modules.load

p9=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$p9" results /results || die "cannot mount the results share"
mount -t 9p -o "$p9,ro,cache=loose" hostroot /newroot || die "cannot mount the host's root"
r=/newroot
mount -t proc proc $r/proc || die "cannot mount proc"
mount -t sysfs sysfs $r/sys || die "cannot mount sysfs"
mount -t devtmpfs devtmpfs $r/dev || die "cannot mount devtmpfs"
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $r/tmp || die "cannot mount /tmp"
mount -t tmpfs -o mode=1777 tmpfs $r/var/tmp || die "cannot mount /var/tmp"
mount -t tmpfs -o mode=755 tmpfs $r/run || die "cannot mount /run"
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup || die "cannot mount cgroup2"
mount -t bpf bpf $r/sys/fs/bpf || die "cannot mount bpffs"
mount -t securityfs securityfs $r/sys/kernel/security || die "cannot mount securityfs"
[ -d $r/sys/kernel/tracing ] && mount -t tracefs tracefs $r/sys/kernel/tracing
[ -d $r/sys/kernel/debug ] && mount -t debugfs debugfs $r/sys/kernel/debug
ip link set lo up
hostname plumbline-guest

i=0
while read -r dir; do
  [ -d "$r$dir" ] || mkdir -p "$r$dir"
  mount -t 9p -o "$p9" "share$i" "$r$dir" || die "cannot mount the share of $dir"
  i=$((i + 1))
done </results/shares

# The command runs in the host's root, in the host's directory, through the
# host's sh; its status comes back through the share (written last).
cwd=$(cat /results/cwd)
cmd=$(cat /results/command)
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root LOGNAME=root \
  chroot $r /bin/sh -c 'cd "$1" || exit 125; exec /bin/sh -c "$2"' guest "$cwd" "$cmd" \
  </dev/null >/results/stdout 2>/results/stderr
echo $? >/results/status.tmp && mv /results/status.tmp /results/status
sync
umount /results
halt
INIT

# ---------------------------------------------------------------- helpers in Python

# vmlinux CMD...: the helpers that need binary parsing.
#   vmlinux VMLINUZ OUT           the ELF inside a bzImage (xz, zstd or gzip)
#   modules TREE OUTDIR NAMES...  copies NAMES and their dependencies from a
#                                 /lib/modules/<release> tree, uncompressed, into
#                                 OUTDIR, with OUTDIR/modules.load in load order
#   cpio STAGE OUT                a newc archive of STAGE (+ /dev/console)
py() {
  "$python" - "$@" <<'PY'
import gzip, lzma, os, pathlib, stat, subprocess, sys, zlib

def vmlinux(src, out):
    data = pathlib.Path(src).read_bytes()
    if data[0x202:0x206] != b"HdrS":
        sys.exit(f"{src}: not a bzImage")
    setup_sects = data[0x1F1] or 4
    start = (setup_sects + 1) * 512 + int.from_bytes(data[0x248:0x24C], "little")
    payload = data[start : start + int.from_bytes(data[0x24C:0x250], "little")]
    if payload.startswith(b"\xfd7zXZ\x00"):
        elf = lzma.LZMADecompressor().decompress(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        # The kernel's build appends the uncompressed size (4 bytes).
        elf = subprocess.run(["zstd", "-dcq"], input=payload[:-4], stdout=subprocess.PIPE, check=True).stdout
    elif payload.startswith(b"\x1f\x8b"):
        elf = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    else:
        sys.exit(f"{src}: unknown compression {payload[:6].hex()}")
    if not elf.startswith(b"\x7fELF"):
        sys.exit(f"{src}: the decompressed kernel is not an ELF")
    pathlib.Path(out).write_bytes(elf)

def modinfo(elf):
    shoff = int.from_bytes(elf[0x28:0x30], "little")
    entsize, num, strndx = (int.from_bytes(elf[o : o + 2], "little") for o in (0x3A, 0x3C, 0x3E))
    sections = []
    for i in range(num):
        h = elf[shoff + i * entsize : shoff + (i + 1) * entsize]
        sections.append((int.from_bytes(h[0:4], "little"), int.from_bytes(h[0x18:0x20], "little"),
                         int.from_bytes(h[0x20:0x28], "little")))
    strtab = elf[sections[strndx][1] :]
    for name, off, size in sections:
        if strtab[name : strtab.index(b"\0", name)] == b".modinfo":
            return dict(kv.split(b"=", 1) for kv in elf[off : off + size].split(b"\0") if b"=" in kv)
    return {}

def modules(tree, outdir, names):
    tree, outdir = pathlib.Path(tree), pathlib.Path(outdir)
    found = {}
    for p in tree.rglob("*.ko*"):
        found[p.name.split(".ko")[0].replace("-", "_")] = p
    builtin = set()
    if (tree / "modules.builtin").exists():
        builtin = {pathlib.Path(l).name.split(".ko")[0].replace("-", "_")
                   for l in (tree / "modules.builtin").read_text().split()}
    order = []
    def visit(name):
        name = name.replace("-", "_")
        if name in order:
            return
        if name not in found:
            if name in builtin:
                return
            sys.exit(f"module {name} is neither in {tree} nor built in")
        p = found[name]
        data = p.read_bytes()
        if p.name.endswith(".xz"):
            data = lzma.decompress(data)
        elif p.name.endswith(".zst"):
            data = subprocess.run(["zstd", "-dcq"], input=data, stdout=subprocess.PIPE, check=True).stdout
        elif p.name.endswith(".gz"):
            data = gzip.decompress(data)
        for dep in modinfo(data).get(b"depends", b"").decode().split(","):
            if dep:
                visit(dep)
        (outdir / f"{name}.ko").write_bytes(data)
        order.append(name)
    outdir.mkdir(parents=True, exist_ok=True)
    for n in names:
        visit(n)
    (outdir / "modules.load").write_text("".join(f"{n}.ko\n" for n in order))

def cpio(stage, out):
    stage = pathlib.Path(stage)
    chunks, ino = [], 1
    def entry(name, mode, data=b"", rdev=(0, 0)):
        nonlocal ino
        name = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name), 0]
        chunks.append(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
        chunks.append(b"\0" * (-(110 + len(name)) % 4) + data + b"\0" * (-len(data) % 4))
        ino += 1
    entry("dev", stat.S_IFDIR | 0o755)
    # Init's stdio, before devtmpfs is mounted.
    entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    for p in sorted(stage.rglob("*")):
        rel = str(p.relative_to(stage))
        st = p.lstat()
        if p.is_symlink():
            entry(rel, stat.S_IFLNK | 0o777, os.readlink(p).encode())
        elif p.is_dir():
            entry(rel, stat.S_IFDIR | 0o755)
        else:
            entry(rel, stat.S_IFREG | stat.S_IMODE(st.st_mode), p.read_bytes())
    entry("TRAILER!!!", 0)
    pathlib.Path(out).write_bytes(b"".join(chunks))

cmd, *args = sys.argv[1:]
{"vmlinux": vmlinux, "modules": lambda t, o, *n: modules(t, o, n), "cpio": cpio}[cmd](*args)
PY
}

# ---------------------------------------------------------------- install

apt_private=$cache/apt
apt_opts=()
use_private_apt() {
  mkdir -p "$apt_private/lists/partial" "$apt_private/cache/archives/partial" "$apt_private/sources.list.d"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  cat >"$apt_private/sources.list" <<EOF
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-backports main
EOF
  apt_opts=(-o "Dir::Etc::sourcelist=$apt_private/sources.list" -o "Dir::Etc::sourceparts=$apt_private/sources.list.d"
    -o "Dir::State::Lists=$apt_private/lists" -o "Dir::Cache=$apt_private/cache")
  log "using a private apt configuration ($apt_private/sources.list)"
  apt-get "${apt_opts[@]}" update -qq
}

# The newest package of a series apt knows, as "NAME VERSION"; empty if none.
newest_package() {
  local name
  name=$(apt-cache "${apt_opts[@]}" pkgnames linux-image- | grep -E "$(package_pattern "$1")" | sort -V | tail -n 1) || true
  [ -n "$name" ] || return 0
  echo "$name $(apt-cache "${apt_opts[@]}" show --no-all-versions "$name" | sed -n 's/^Version: //p')"
}

# Downloads NAME=VERSION into the current directory; after an apt-get update
# if the host's lists are stale (the archive dropped that version).
apt_download() {
  local opts=("${apt_opts[@]}" -o APT::Sandbox::User=root -qq)
  apt-get "${opts[@]}" download "$1" >/dev/null 2>&1 && return
  log "apt-get download $1 failed; updating apt's lists and retrying"
  apt-get "${apt_opts[@]}" update -qq
  apt-get "${opts[@]}" download "$1" >/dev/null
}

install_host_packages() {
  local missing=() p
  for p in qemu-system-x86 zstd python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root: sudo $0 install"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
}

# busybox-static is downloaded, not installed: it conflicts with Debian's
# dynamic busybox, which initramfs-tools may need on the host.
install_busybox() {
  local want have
  want=$(apt-cache show --no-all-versions busybox-static 2>/dev/null | sed -n 's/^Version: //p')
  if [ -z "$want" ]; then
    apt-get update -qq
    want=$(apt-cache show --no-all-versions busybox-static | sed -n 's/^Version: //p')
  fi
  have=$(cat "$cache/busybox/version" 2>/dev/null || true)
  [ -n "$want" ] || die "apt knows no busybox-static"
  [ "$want" = "$have" ] && [ -x "$cache/busybox/busybox" ] && return
  log "fetching busybox-static $want"
  local tmp
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  (cd "$tmp" && apt_download "busybox-static=$want" && dpkg -x busybox-static_*.deb x)
  mkdir -p "$cache/busybox"
  install -m 0755 "$tmp/x/bin/busybox" "$cache/busybox/busybox"
  echo "$want" >"$cache/busybox/version"
  rm -rf "$tmp"
}

init_stamp() { printf '%s\n%s\n' "$guest_init" "$(cat "$cache/busybox/version")" | sha256sum | cut -d' ' -f1; }

# Builds KERNEL's initramfs from busybox, the init above and the kernel's
# modules kept at install; atomic, so concurrent runs may both do it.
build_initramfs() {
  local kdir=$cache/kernels/$1 stage
  stage=$(mktemp -d "$cache/tmp.XXXXXX")
  mkdir -p "$stage/bin" "$stage/lib/modules" "$stage/proc" "$stage/sys" "$stage/newroot" "$stage/results"
  cp "$cache/busybox/busybox" "$stage/bin/busybox"
  printf '%s\n' "$guest_init" >"$stage/init"
  chmod 0755 "$stage/init"
  cp "$kdir/modules/"*.ko "$stage/lib/modules/"
  cp "$kdir/modules/modules.load" "$stage/modules.load"
  py cpio "$stage" "$stage.cpio"
  init_stamp >"$stage.stamp"
  mv -f "$stage.cpio" "$kdir/initramfs.cpio"
  mv -f "$stage.stamp" "$kdir/initramfs.stamp"
  rm -rf "$stage"
}

install_kernel() {
  local series=$1 kdir=$cache/kernels/$1 want
  want=$(newest_package "$series")
  if [ -z "$want" ] && [ ${#apt_opts[@]} -eq 0 ]; then
    log "the host's apt knows no $series kernel package"
    use_private_apt
    want=$(newest_package "$series")
  fi
  [ -n "$want" ] || die "no Debian $series kernel package found (pattern $(package_pattern "$series"))"
  if [ "$(cat "$kdir/package" 2>/dev/null)" = "$want" ] && [ -f "$kdir/vmlinux" ]; then
    [ "$(cat "$kdir/initramfs.stamp" 2>/dev/null)" = "$(init_stamp)" ] || build_initramfs "$series"
    return
  fi
  local name=${want% *} version=${want#* } tmp
  log "fetching $name $version"
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  (cd "$tmp" && apt_download "$name=$version" && dpkg -x "$name"_*.deb x)
  local release
  release=$(basename "$(ls -d "$tmp"/x/lib/modules/*/)")
  py vmlinux "$tmp/x/boot/vmlinuz-$release" "$tmp/vmlinux"
  py modules "$tmp/x/lib/modules/$release" "$tmp/modules" "${initramfs_modules[@]}"
  rm -rf "$kdir"
  mkdir -p "$kdir"
  mv "$tmp/vmlinux" "$tmp/modules" "$kdir/"
  cp "$tmp/x/boot/config-$release" "$kdir/config"
  echo "$release" >"$kdir/release"
  rm -rf "$tmp"
  build_initramfs "$series"
  echo "$want" >"$kdir/package"
  log "kernel $series: $want ($release)"
}

install_all() {
  mkdir -p "$cache"
  exec 9>"$cache/install.lock"
  flock 9
  # Scratch of interrupted installs, and runs kept because their guest
  # failed; old ones only, as guests may be running now.
  find "$cache" -maxdepth 1 -name 'tmp.*' -mmin +60 -exec rm -rf {} +
  [ ! -d "$cache/runs" ] || find "$cache/runs" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} +
  install_host_packages
  install_busybox
  [ "${PLUMBLINE_GUEST_APT:-}" != private ] || use_private_apt
  local k
  for k in "${kernels[@]}"; do install_kernel "$k"; done
}

list_kernels() {
  local k
  for k in "${kernels[@]}"; do
    if [ -f "$cache/kernels/$k/package" ]; then
      echo "$k $(cat "$cache/kernels/$k/release") $(cat "$cache/kernels/$k/package")"
    else
      echo "$k (not installed: run scripts/guest.sh install)"
    fi
  done
}

# ---------------------------------------------------------------- run

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

run() {
  [ $# -ge 1 ] || usage
  local kernel=$1 lsm="" results="" console=0 shares=() dir
  shift
  package_pattern "$kernel" >/dev/null
  while [ $# -gt 0 ]; do
    case $1 in
      --lsm) lsm=${2:?--lsm needs a list}; shift 2 ;;
      --share) shares+=("$(cd "${2:?--share needs a directory}" && pwd)"); shift 2 ;;
      --results) results=${2:?--results needs a directory}; shift 2 ;;
      --console) console=1; shift ;;
      --) shift; break ;;
      -*) usage ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || usage
  local here=$PWD under_share=0
  for dir in "${shares[@]}"; do
    case "$here/" in "$dir"/*) under_share=1 ;; esac
  done
  case "$here/" in
    /tmp/* | /var/tmp/* | /run/* | /dev/shm/*)
      [ "$under_share" -eq 1 ] ||
        die "the current directory $here is hidden in the guest by its own tmpfs: run from elsewhere or --share it" ;;
  esac

  local kdir=$cache/kernels/$kernel
  command -v "$qemu" >/dev/null || die "$qemu is missing: run scripts/guest.sh install"
  [ -f "$kdir/vmlinux" ] && [ -f "$kdir/package" ] || die "kernel $kernel is not installed: run scripts/guest.sh install"
  [ -x "$cache/busybox/busybox" ] || die "busybox is missing: run scripts/guest.sh install"
  [ "$(cat "$kdir/initramfs.stamp" 2>/dev/null)" = "$(init_stamp)" ] || build_initramfs "$kernel"

  local run_dir
  mkdir -p "$cache/runs"
  run_dir=$(mktemp -d "$cache/runs/$kernel.XXXXXX")
  if [ -n "$results" ]; then
    mkdir -p "$results"
    results=$(cd "$results" && pwd)
  else
    results=$run_dir/results
    mkdir -p "$results"
  fi
  rm -f "$results/status" "$results/stdout" "$results/stderr"
  printf '%s' "$*" >"$results/command"
  pwd >"$results/cwd"
  : >"$results/shares"
  local virtfs=() i=0
  for dir in "${shares[@]}"; do
    echo "$dir" >>"$results/shares"
    virtfs+=(-virtfs "local,path=$dir,mount_tag=share$i,security_model=none,multidevs=remap")
    i=$((i + 1))
  done

  local append="console=ttyS0 quiet panic=-1"
  [ -z "$lsm" ] || append+=" lsm=$lsm"
  local rc=0
  timeout -k 10 "$timeout_s" "$qemu" \
    -accel tcg -cpu max -smp 1 -m 2048 -nographic -no-reboot -nodefaults -monitor none \
    -serial "file:$run_dir/console.log" \
    -kernel "$kdir/vmlinux" -initrd "$kdir/initramfs.cpio" -append "$append" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$results,mount_tag=results,security_model=none,multidevs=remap" \
    "${virtfs[@]}" </dev/null >"$run_dir/qemu.log" 2>&1 || rc=$?

  [ "$console" -eq 0 ] || cat "$run_dir/console.log" >&2
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    log "the guest ($kernel) did not power off within ${timeout_s}s and was killed (PLUMBLINE_GUEST_TIMEOUT changes the limit)"
    show_failure "$run_dir"
    exit 124
  fi
  if [ ! -f "$results/status" ]; then
    log "the guest ($kernel) ended without a result (qemu exit status $rc)"
    show_failure "$run_dir"
    exit 125
  fi
  local status
  status=$(cat "$results/status")
  cat "$results/stdout"
  cat "$results/stderr" >&2
  rm -rf "$run_dir"
  exit "$status"
}

show_failure() {
  log "qemu's output:"
  tail -n 20 "$1/qemu.log" >&2 || true
  log "the guest's console (last 60 lines; all of it in $1/console.log):"
  tail -n 60 "$1/console.log" >&2 || true
}

case "${1:-}" in
  install) install_all ;;
  run) shift; run "$@" ;;
  kernels) list_kernels ;;
  *) usage ;;
esac
