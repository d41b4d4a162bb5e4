#!/usr/bin/env bash
# PouchDB comparison benchmark; see README.md. Usage: ./run.sh [N]
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
exec node replicate.mjs "$@"
