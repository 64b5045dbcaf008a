#!/usr/bin/env bash
# Start every process of the embedded default (the Procfile: web, the two Celery workers, beat and
# the sandbox carrier) under devtools/supervisor.py, which restarts a process that exits without
# stopping the others. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8025}
export PORT SANDBOX_PORT
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}
export SANDBOX_URL=${SANDBOX_URL:-http://127.0.0.1:$SANDBOX_PORT}
export EGRESS_ALLOW_LOOPBACK=${EGRESS_ALLOW_LOOPBACK:-1}  # the sandbox carrier listens on 127.0.0.1
mkdir -p var/log

echo
echo "  +Message console:  http://127.0.0.1:$PORT/   (admin: http://127.0.0.1:$PORT/admin/)"
echo "  Sandbox carrier:   $SANDBOX_URL   logs in var/log/, process states in var/run/processes.json"
mkdir -p var/mail
echo "  E-mail (invitations, password resets) is written to files, not sent: $(pwd)/var/mail/"
echo "    the newest message: ls -t var/mail/* | head -1 | xargs -r cat"
cat var/demo-login.txt 2>/dev/null || true
echo
exec .venv/bin/python -m devtools.supervisor Procfile
