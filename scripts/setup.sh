#!/usr/bin/env bash
# Installs everything sysattest needs to build and test on a Debian machine, then builds it.
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use (a missing one is installed; present ones are left alone).
#   gnupg        - GnuPG interop tests (gpg --verify accepts our signatures and vice versa)
#   libcap2-bin  - setcap/getcap, to give test files a security.capability attribute
#   python3 make g++ - node-gyp builds the fs-xattr native module
#   rpm          - rpm/rpmbuild: the rpm version-ordering oracle and real rpm databases built in tests
#   chromium     - the dashboard's browser tests drive Debian's headless Chromium (never a download)
#   db5.3-util   - db5.3_load writes Berkeley DB rpm databases that the BDB reader's tests check
#   createrepo-c - real rpm repository metadata for the dnf catalog tests
#   dpkg-dev apt-utils - dpkg-scanpackages and apt-ftparchive: the local signed archives (snapshot,
#                  third-party repository) the extra-sources tests serve on loopback
debs=(gnupg libcap2-bin python3 make g++ dpkg ca-certificates rpm chromium db5.3-util createrepo-c dpkg-dev apt-utils)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The version-ordering oracle test reads Debian's package lists; make sure apt has some.
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  need_update=1
fi
if [ "${#missing[@]}" -gt 0 ] || [ -n "${need_update:-}" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# The generator drives podman (and mmdebstrap, qemu-user-static for foreign architectures).
bash scripts/podman-setup.sh

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "setup: Node.js >= 20.19 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.sysattest-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

npm run build --silent
