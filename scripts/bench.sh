#!/usr/bin/env bash
# npm run bench [-- NAME...]: runs the benchmarks (all by default). Names:
#   hash      core's parallel hasher over every file of this machine's dpkg database, against a
#             plain loop of Node's crypto on all cores (the lower bound)
#   generate  manifests for every installed package the platform catalog offers at the same
#             version (needs root and podman; builds the platform image if missing)
#   verify    sysattest verify over every installed package (manifests made from the live disk,
#             served by a real server) against dpkg --verify over the same packages and the
#             hashing lower bound; peak memory
#   store     the server's storage layer on SQLite and PostgreSQL: ingest 1,000 manifests, lookup of
#             a 750-package machine, reverse lookup of 100,000 hashes (no HTTP)
#   server    the same over HTTP against real `sysattest-server serve` processes, plus 60 s of
#             concurrent whole-machine lookups from a load generator in another process
#             (PostgreSQL: SYSATTEST_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres)
#   dashboard every dashboard page on a big SQLite database (60,000 catalog entries, 1,000,000
#             manifest file entries, 1,000 hosts × 800 packages): server time and load time in
#             headless Chromium (target < 1 s)
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(hash generate verify store server dashboard)
for name in "${names[@]}"; do
  case "$name" in
    hash) node packages/core/dist/bench/hash.js ;;
    generate) node packages/generator/dist/bench/generate.js ;;
    verify) node packages/client/dist/bench/verify.js ;;
    store) node packages/server/dist/bench/store.js ;;
    server) node packages/server/dist/bench/server.js ;;
    dashboard) node packages/server/dist/bench/dashboard.js ;;
    *) echo "bench: unknown benchmark $name (hash, generate, verify, store, server, dashboard)" >&2; exit 2 ;;
  esac
done
