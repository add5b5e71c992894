#!/usr/bin/env bash
# npm run bench [-- NAME...]: runs the benchmarks (all by default). Names:
#   hash      core's parallel hasher over every file of this machine's dpkg database, against a
#             plain loop of Node's crypto on all cores (the lower bound)
#   generate  manifests for every installed package the platform catalog offers at the same
#             version (needs root and podman; builds the platform image if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(hash generate)
for name in "${names[@]}"; do
  case "$name" in
    hash) node packages/core/dist/bench/hash-bench.js ;;
    generate) node packages/generator/dist/bench/generate-bench.js ;;
    *) echo "bench: unknown benchmark $name (hash, generate)" >&2; exit 2 ;;
  esac
done
