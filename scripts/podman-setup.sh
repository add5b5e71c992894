#!/usr/bin/env bash
# Prepares a Debian host for sysattest-generator: podman (rootful, as root), mmdebstrap to build
# Debian images, and qemu-user-static so foreign architectures (debian/bookworm/arm64 on an amd64
# host) can be built and run. Idempotent: present packages are left alone, a working podman is left
# alone, and an administrator's existing /etc/containers/containers.conf is never overwritten.
#
# Usage (as root): bash scripts/podman-setup.sh [--native-only]
#   --native-only: this host's own architecture only (no qemu-user-static, no binfmt handlers)
# Exit status: 0 when podman runs containers afterwards, 1 otherwise (the last line says why).
set -euo pipefail

say() { echo "podman-setup: $*"; }
fail() {
  echo "podman-setup: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run as root (the generator drives rootful podman): sudo bash $0"
command -v apt-get >/dev/null || fail "this script knows Debian and its derivatives only (no apt-get found)"

# --- Debian packages -------------------------------------------------------------------------
# Installed without Recommends, so this list is everything the generator needs:
#   podman runc        the container engine; runc because crun fails on some hosts (cgroups in
#                      hybrid mode), and podman needs one OCI runtime anyway
#   netavark aardvark-dns iptables
#                      podman's network stack (containers reach the distribution archive)
#   mmdebstrap         builds Debian root filesystems from the archive (root mode, so no uidmap)
#   arch-test          lets mmdebstrap check that a foreign architecture can execute
#   qemu-user-static binfmt-support
#                      run foreign-architecture binaries (arm64 images on amd64); the binfmt
#                      handlers are registered with the fix-binary flag, which containers need
# Not needed for rootful podman: uidmap, slirp4netns, fuse-overlayfs (rootless only), buildah.
native_only=0
[ "${1:-}" = --native-only ] && native_only=1
debs=(podman runc netavark aardvark-dns iptables mmdebstrap)
[ "$native_only" -eq 1 ] || debs+=(arch-test qemu-user-static binfmt-support)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages already installed: ${debs[*]}"
fi

# --- foreign architectures (binfmt_misc) -----------------------------------------------------
# Without systemd (containers, minimal VMs) nothing registers the handlers at boot; update-binfmts
# mounts binfmt_misc when needed and enables the qemu handlers qemu-user-static ships.
host_arch=$(dpkg --print-architecture)
if [ "$host_arch" = arm64 ]; then probe_handler=qemu-x86_64; else probe_handler=qemu-aarch64; fi
binfmt=/proc/sys/fs/binfmt_misc
handler_enabled() { [ -e "$binfmt/$1" ] && head -n1 "$binfmt/$1" | grep -qx enabled; }
if [ "$native_only" -eq 1 ]; then
  say "this host's architecture only: foreign-architecture emulation not set up"
elif handler_enabled "$probe_handler"; then
  say "binfmt handlers for foreign architectures are registered ($probe_handler enabled)"
else
  enabled=0
  for f in /usr/share/binfmts/qemu-*; do
    [ -e "$f" ] || continue
    h=$(basename "$f")
    handler_enabled "$h" && continue
    if [ -e "$binfmt/$h" ]; then
      # Registered but switched off by hand: switch it back on.
      if echo 1 >"$binfmt/$h" 2>/dev/null; then enabled=$((enabled + 1)); fi
    elif update-binfmts --enable "$h" 2>/dev/null; then
      enabled=$((enabled + 1))
    fi
  done
  if handler_enabled "$probe_handler"; then
    say "enabled $enabled qemu binfmt handlers (foreign-architecture images can be built and run)"
  else
    say "WARNING: could not enable the binfmt handler $probe_handler: foreign-architecture images" \
      "will not build on this host (is $binfmt mounted and writable?)"
  fi
fi

# --- podman probe ----------------------------------------------------------------------------
# Runs a container whose root is an empty directory and whose command does not exist: a working
# runtime gets as far as trying to execute it (exit 127, "not found"), while a misconfigured one
# fails earlier (crun and cgroups v1 hybrid mode, rlimits above this machine's hard limits).
# Needs no image and no network.
probe_output=''
probe() {
  local dir rc
  dir=$(mktemp -d /tmp/sysattest-podman-probe.XXXXXX)
  rc=0
  probe_output=$(podman run --rm --network=none --rootfs "$dir" /sysattest-probe-does-not-exist 2>&1) || rc=$?
  rm -rf --one-file-system "$dir"
  [ "$rc" -eq 127 ]
}

if probe; then
  say "podman runs containers: nothing to configure"
  exit 0
fi
say "podman cannot run a container yet: $(echo "$probe_output" | tail -n1)"

# The fix for the known quirks: runc instead of crun, and default rlimits within this machine's
# hard limits (podman's defaults exceed them on some virtual machines).
hard_nofile=$(ulimit -Hn)
hard_nproc=$(ulimit -Hu)
cap() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
nofile=$(cap "$hard_nofile" 1048576)
nproc=$(cap "$hard_nproc" 4096)
conf_content="[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]

[engine]
runtime = \"runc\""

conf=/etc/containers/containers.conf
if [ -n "${CONTAINERS_CONF:-}" ]; then
  fail "CONTAINERS_CONF=$CONTAINERS_CONF is set and podman still fails; add to that file:
$conf_content"
fi
if [ -e "$conf" ]; then
  # Never overwrite an administrator's file: say what it needs instead.
  fail "$conf exists (left untouched) but podman still fails; add these settings to it, or point
CONTAINERS_CONF at a file holding them:
$conf_content"
fi

mkdir -p /etc/containers
tmp=$(mktemp "$conf.XXXXXX")
{
  echo "# Written by sysattest scripts/podman-setup.sh: this host's podman failed to run a container"
  echo "# with the defaults (crun on cgroups v1 hybrid, or rlimits above the hard limits)."
  echo "$conf_content"
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$conf"
say "wrote $conf (runtime runc; default_ulimits nofile=$nofile nproc=$nproc)"

if probe; then
  say "podman runs containers now"
else
  fail "podman still cannot run a container: $(echo "$probe_output" | tail -n1)"
fi
