#!/usr/bin/env bash
# The README's test command: set up (Debian packages, npm ci, build), lint, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
npm run lint --silent
# The LTS lines too: core's tests (the rpm reader's node:sqlite path among them) on the Node 24
# runtime the Debian packages ship, and core's and the client's on Node 22, both fetched and
# checksum-checked by packages/release (kept under release/cache). First, so the closing summary
# is the whole suite's. The client's tests start a real server, which runs on this machine's node
# (its better-sqlite3 is built for it).
runtime() {
  node --input-type=module -e "const m = await import('./packages/release/dist/node-runtime.js'); console.log(m.fetchNodeRuntime('release/cache', m.$1).node)"
}
node24=$(runtime NODE_RUNTIME)
node22=$(runtime NODE_22_RUNTIME)
"$node24" --test --test-concurrency=2 --test-reporter=dot 'packages/core/dist/**/*.test.js'
"$node22" --test --test-concurrency=2 --test-reporter=dot 'packages/core/dist/**/*.test.js'
# The client's on Node 22 without its three end-to-end files (real roots, a relay: 7 of the 8½
# minutes the whole suite took on Node 22 here under load; the whole suite below runs them).
mapfile -t client22 < <(find packages/client/dist -name '*.test.js' | grep -v -E '/(verify-rootfs|verify-rpm-root|compromised-server)\.test\.js$' | sort)
SYSATTEST_TEST_SERVER_NODE=$(command -v node) "$node22" --test --test-concurrency=2 --test-reporter=dot "${client22[@]}"
node --test --test-concurrency=2 packages/*/dist/
