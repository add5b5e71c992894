#!/usr/bin/env bash
# Installs everything sysattest needs to build and test on a Debian machine, then builds it.
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Usage: bash scripts/setup.sh [--tests] [-- COMMAND [ARG...]]
#   (no option)  what the main job needs (scripts/verify-this-machine.sh)
#   --tests      also what only the tests need (scripts/test.sh)
#   -- COMMAND   run COMMAND once the TypeScript build is done, while the native modules may still
#                be compiling (the main job builds its platform image then); set-up fails if it fails
for_tests=0
then_run=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --tests) for_tests=1 ;;
    --)
      shift
      then_run=("$@")
      break
      ;;
    *)
      echo "usage: bash scripts/setup.sh [--tests] [-- COMMAND [ARG...]]" >&2
      exit 64
      ;;
  esac
  shift
done

# Debian packages (a missing one is installed; present ones are left alone).
# The main job:
#   python3 make g++ - node-gyp builds the native module npm ci installs (better-sqlite3: the server, and
#                  the client on Node 20; the client's Debian package needs none)
#   dpkg ca-certificates - dpkg-query, and TLS to the npm registry
debs=(python3 make g++ dpkg ca-certificates)
# Only the tests:
#   gnupg        - GnuPG interop tests (gpg --verify accepts our signatures and vice versa)
#   libcap2-bin  - setcap/getcap, to give test files a security.capability attribute
#   rpm          - rpm/rpmbuild: the rpm version-ordering oracle and real rpm databases built in tests
#   chromium     - the dashboard's browser tests drive Debian's headless Chromium (never a download)
#   db5.3-util   - db5.3_load writes Berkeley DB rpm databases that the BDB reader's tests check
#   createrepo-c - real rpm repository metadata for the dnf catalog tests
#   dpkg-dev apt-utils - dpkg-scanpackages and apt-ftparchive: the local signed archives (snapshot,
#                  third-party repository) the extra-sources tests serve on loopback
if [ "$for_tests" -eq 1 ]; then
  debs+=(gnupg libcap2-bin rpm chromium db5.3-util createrepo-c dpkg-dev apt-utils)
fi
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

# The generator drives podman and mmdebstrap; the tests also build foreign-architecture images
# (qemu-user-static), which the main job (this machine's own platform) never does.
if [ "$for_tests" -eq 1 ]; then
  bash scripts/podman-setup.sh
else
  bash scripts/podman-setup.sh --native-only
fi

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "setup: Node.js >= 20.19 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when the lock file changed since the last install. Its install scripts (compiling
# better-sqlite3 takes a minute and a half on 2 cores) run beside the TypeScript build and COMMAND,
# which need no native module.
stamp=node_modules/.sysattest-lock-stamp
native_pid=""
native_log=node_modules/.sysattest-native-build.log
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  rm -f "$stamp"
  npm ci --no-audit --no-fund --ignore-scripts
  npm rebuild --no-audit --no-fund >"$native_log" 2>&1 &
  native_pid=$!
fi
native_done() {
  [ -n "$native_pid" ] || return 0
  if ! wait "$native_pid"; then
    cat "$native_log" >&2
    echo "setup: building the native modules failed (npm rebuild; its output is above)" >&2
    exit 1
  fi
  native_pid=""
  cp package-lock.json "$stamp"
}
trap '[ -z "$native_pid" ] || kill "$native_pid" 2>/dev/null' EXIT

npm run build --silent
if [ "${#then_run[@]}" -gt 0 ]; then
  "${then_run[@]}"
fi
native_done
