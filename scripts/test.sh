#!/usr/bin/env bash
# The README's test command: set up (Debian packages, npm ci, build), lint, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
npm run lint --silent
node --test --test-concurrency=2 packages/*/dist/
