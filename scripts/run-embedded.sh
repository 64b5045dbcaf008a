#!/usr/bin/env bash
# Start every process of the embedded default together: web, Celery worker, beat and the sandbox
# carrier. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8025}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}
export SANDBOX_URL=${SANDBOX_URL:-http://127.0.0.1:$SANDBOX_PORT}
export EGRESS_ALLOW_LOOPBACK=${EGRESS_ALLOW_LOOPBACK:-1}  # the sandbox carrier listens on 127.0.0.1
mkdir -p var/log

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$BIN/python manage.py runsandbox --port "$SANDBOX_PORT" >var/log/sandbox.log 2>&1 & pids+=($!)
# One bulk worker process (the in-process token bucket then holds the rate) and one for the
# priority lane, so single messages never wait behind a campaign.
$BIN/celery -A config worker -Q celery -c 1 -n bulk@%h -l warning >var/log/worker.log 2>&1 & pids+=($!)
$BIN/celery -A config worker -Q priority -c 1 -n priority@%h -l warning >var/log/priority.log 2>&1 & pids+=($!)
$BIN/celery -A config beat -l warning --pidfile= >var/log/beat.log 2>&1 & pids+=($!)

echo
echo "  +Message console:  http://127.0.0.1:$PORT/   (admin: http://127.0.0.1:$PORT/admin/)"
echo "  Sandbox carrier:   $SANDBOX_URL   logs in var/log/"
cat var/demo-login.txt 2>/dev/null || true
echo
$BIN/python manage.py runserver "127.0.0.1:$PORT" --noreload & pids+=($!)
wait -n "${pids[@]}"
