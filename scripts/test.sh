#!/usr/bin/env bash
# The README's test command: set up (Debian packages, npm ci, build), lint, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
npm run lint --silent
# The current LTS line too: core's tests (the rpm reader's node:sqlite path among them) on the
# Node 24 runtime the client's Debian package ships, fetched and checksum-checked by
# packages/release (kept under release/cache). First, so the closing summary is the whole suite's.
node24=$(node --input-type=module -e "const m = await import('./packages/release/dist/node-runtime.js'); console.log(m.fetchNodeRuntime('release/cache').node)")
"$node24" --test --test-concurrency=2 --test-reporter=dot 'packages/core/dist/**/*.test.js'
node --test --test-concurrency=2 packages/*/dist/
