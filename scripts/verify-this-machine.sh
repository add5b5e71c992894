#!/usr/bin/env bash
# Verify this machine end to end, as root on a Debian machine, from a clone of this repository:
#   installs what is missing and builds (scripts/setup.sh), starts a sysattest server on the
#   embedded SQLite in the background, creates a generator key and tokens, pins the key for the
#   client, builds this machine's platform image, syncs its catalog, generates a signed manifest
#   for every installed package the catalog offers at the installed version, and runs
#   `sysattest verify` on this machine. Idempotent: a second run reuses the server, key, image,
#   catalog and manifests, and generates nothing already generated.
#
# Settings (environment): SYSATTEST_STATE_DIR (default /var/lib/sysattest), SYSATTEST_PORT
# (default 8080), SYSATTEST_WORKER_BATCH_SIZE (default 1000: the whole machine in one container)
# and SYSATTEST_WORKER_CONCURRENCY (default: the worker's own, `sysattest-generator work --help`),
# SYSATTEST_VERIFY_ARGS (extra
# arguments for `sysattest verify`, e.g. "--format json"), SYSATTEST_SKIP_SETUP=1 (skip
# scripts/setup.sh: everything is installed and built already).
# Exit status: that of `sysattest verify` (0 clean; bits 1 findings, 2 incomplete, 4 trust), or
# 64-70 when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

state=${SYSATTEST_STATE_DIR:-/var/lib/sysattest}
port=${SYSATTEST_PORT:-8080}
url="http://127.0.0.1:${port}"
# One container for the whole machine: the packages installed on one machine can be installed
# together by construction, so the batch is as large as the worker allows (1,000) and shared
# dependencies are installed once (`npm run bench -- generate`: 1 × 800 made this machine's 709
# versions at 262 a minute, 2 × 360 at 244, 2 × 200 at 172, 1 × 200 at 152).
tuning=(--batch-size "${SYSATTEST_WORKER_BATCH_SIZE:-1000}")
[ -n "${SYSATTEST_WORKER_CONCURRENCY:-}" ] && tuning+=(--concurrency "$SYSATTEST_WORKER_CONCURRENCY")
started_at=$(date +%s)

server_cli=(node "$repo/packages/server/bin/sysattest-server.js")
generator_cli=(node "$repo/packages/generator/bin/sysattest-generator.js")
client_cli=(node "$repo/packages/client/bin/sysattest.js")

step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n==> [%d] %s  (%ds)\n' "$step_no" "$*" "$(($(date +%s) - started_at))"
}
die() {
  printf 'verify-this-machine: %s\n' "$*" >&2
  exit "${2:-65}"
}

[ "$(id -u)" -eq 0 ] || die "run as root (podman builds and runs the package containers as root)" 64
[ -r /var/lib/dpkg/status ] || die "no dpkg database: this script checks Debian-family machines" 65

install -d -m 0750 "$state"
install -d -m 0700 "$state/generator"
export SYSATTEST_GENERATOR_HOME="$state/generator"

# This machine's platform image is built (once) during set-up, as soon as the generator is
# compiled, while the native modules compile beside it; the worker below then finds it.
prebuild_image() {
  local platform
  platform=$("${client_cli[@]}" platform | head -n 1)
  "${generator_cli[@]}" image build "$platform" --if-missing
}
if [ -z "${SYSATTEST_SKIP_SETUP:-}" ]; then
  step "set-up: Debian packages (podman, runc, mmdebstrap…), npm ci, build, platform image"
  bash scripts/setup.sh -- bash -c "$(declare -p client_cli generator_cli); $(declare -f prebuild_image); prebuild_image" \
    || die "set-up failed (its output is above)" 70
fi
database="$state/server.sqlite"
pidfile="$state/server.pid"
serverlog="$state/server.log"
keyfile="$state/generator/signing-key.asc"
pubkey="$state/generator.asc"
tokenfile="$state/generator/worker.token"

step "generator signing key"
if [ ! -s "$keyfile" ]; then
  "${generator_cli[@]}" key generate --out "$keyfile" --name "sysattest generator ($(hostname))" >/dev/null
fi
"${generator_cli[@]}" key export --key "$keyfile" >"$pubkey.tmp" && mv "$pubkey.tmp" "$pubkey"
fingerprint=$(gpg --batch --with-colons --import-options show-only --import "$pubkey" 2>/dev/null |
  awk -F: '$1 == "fpr" { print $10; exit }')
echo "key $fingerprint ($keyfile, mode $(stat -c %a "$keyfile"))"

step "server on SQLite ($database)"
"${server_cli[@]}" key add "$pubkey" --database "$database" >/dev/null
if [ ! -s "$tokenfile" ]; then
  "${server_cli[@]}" token create --role generator --name "worker on $(hostname)" --database "$database" \
    2>/dev/null >"$tokenfile.tmp"
  chmod 0600 "$tokenfile.tmp" && mv "$tokenfile.tmp" "$tokenfile"
fi
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && curl -fsS "$url/healthz" >/dev/null 2>&1; then
  echo "already running (pid $(cat "$pidfile")) at $url"
else
  if curl -fsS "$url/healthz" >/dev/null 2>&1; then
    die "something else answers on $url: set SYSATTEST_PORT to a free port" 69
  fi
  (cd "$state" && exec nohup "${server_cli[@]}" serve --database "$database" --port "$port" \
    --trust-key "$pubkey" >>"$serverlog" 2>&1 </dev/null) &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    curl -fsS "$url/healthz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || die "the server did not start; see $serverlog" 69
    sleep 0.2
  done
  curl -fsS "$url/healthz" >/dev/null || die "the server does not answer on $url; see $serverlog" 69
  echo "started (pid $(cat "$pidfile")) at $url, log $serverlog"
fi

step "pin the generator key for the client"
if "${client_cli[@]}" trust list 2>/dev/null | grep -q "$fingerprint"; then
  echo "already pinned"
else
  "${client_cli[@]}" trust add "$pubkey"
fi

platform=$("${client_cli[@]}" platform | head -n 1)
worker=("${generator_cli[@]}" work --server "$url" --token-file "$tokenfile" --key "$keyfile"
  --platform "$platform" "${tuning[@]}" --exit-when-idle)

step "platform image and catalog of $platform (built once; catalog re-synced after a day)"
rc=0
"${worker[@]}" --catalog-interval 1d || rc=$?
# 1: some job failed (reported below); anything else: the image or the catalog could not be made.
[ "$rc" -le 1 ] || die "could not build the image or sync the catalog (exit $rc)" "$rc"

# Asks the server about every installed version (which queues those without a manifest), then
# generates what was queued. Sets failed_n.
ask_and_generate() {
  step "ask the server about every installed package (queues the versions without a manifest)"
  firstpass="$state/first-pass.json"
  set +e
  "${client_cli[@]}" verify --server "$url" --format json >"$firstpass" 2>"$state/first-pass.log"
  set -e
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const s = r.summary;
    console.log(`${s.packages} packages installed: ${s.verified} already have a verified manifest, ${s.unverified} do not`);
  ' "$firstpass" || echo "(first pass: see $state/first-pass.log)"

  step "generate the queued manifests (containers of the $platform image)"
  workerlog="$state/worker.log"
  : >"$workerlog"
  set +e
  "${worker[@]}" --catalog-interval off --log-format json 2>"$workerlog" &
  worker_pid=$!
  trap 'kill -TERM "$worker_pid" 2>/dev/null; wait "$worker_pid" 2>/dev/null' INT TERM
  last=""
  while kill -0 "$worker_pid" 2>/dev/null; do
    done_n=$(grep -c '"event":"job-complete"' "$workerlog")
    failed_n=$(grep -c '"event":"job-failed"' "$workerlog")
    line="$done_n manifest(s) made, $failed_n failed  ($(($(date +%s) - started_at))s)"
    if [ -t 1 ]; then
      printf '\r%s' "$line"
    elif [ "$line" != "$last" ] && [ $((SECONDS % 15)) -eq 0 ]; then
      echo "$line"
    fi
    last=$line
    sleep 1
  done
  wait "$worker_pid"
  worker_rc=$?
  trap - INT TERM
  set -e
  [ -t 1 ] && printf '\n'
  done_n=$(grep -c '"event":"job-complete"' "$workerlog" || true)
  failed_n=$(grep -c '"event":"job-failed"' "$workerlog" || true)
  echo "$done_n manifest(s) made, $failed_n failed (worker log: $workerlog)"
  if [ "$worker_rc" -ne 0 ] && [ "$worker_rc" -ne 1 ]; then
    tail -n 5 "$workerlog" >&2
    die "the worker failed (exit $worker_rc); see $workerlog" "$worker_rc"
  fi
}

# The package database as it was when every version it lists had been asked for and generated
# without a failure. While it is unchanged (and the mark is under a day old, as the catalog's
# re-sync is), there is nothing new to ask for, and the run goes straight to verify. This only
# skips work: verify reads the package database itself and checks everything against signed data.
mark="$state/generated-for.sha256"
db_digest=$(sha256sum /var/lib/dpkg/status | cut -d' ' -f1)
if [ -n "$(find "$mark" -mmin -1440 2>/dev/null)" ] && [ "$(cat "$mark")" = "$db_digest" ]; then
  step "nothing installed has changed since the last run made every manifest: nothing to ask for"
else
  rm -f "$mark"
  ask_and_generate
  if [ "$failed_n" -eq 0 ]; then echo "$db_digest" >"$mark"; fi
fi

step "sysattest verify --server $url"
set +e
# shellcheck disable=SC2086 # SYSATTEST_VERIFY_ARGS is a list of arguments
"${client_cli[@]}" verify --server "$url" ${SYSATTEST_VERIFY_ARGS:-}
verify_rc=$?
set -e

cat <<EOF

==> done in $(($(date +%s) - started_at)) s
The sysattest server runs in the background (pid $(cat "$pidfile")):
  API        $url   (log: $serverlog, database: $database)
  dashboard  $url/dashboard/
Stop it with:   kill \$(cat $pidfile)
Run this again: bash scripts/verify-this-machine.sh   (reuses everything; only new versions are generated)
EOF
exit "$verify_rc"
