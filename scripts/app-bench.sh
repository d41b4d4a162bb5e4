#!/usr/bin/env bash
# Measures the desktop app (release build) for docs/benchmarks-app.md: launch to
# tray icon, and PSS of all its processes with the window open, closed and
# reopened. Needs what scripts/app-e2e.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
(cd ui && npx vite build >/dev/null)
cargo build --release -p ferry-desktop -p ferry-window
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export FERRY_APP="$TARGET_DIR/release/ferry-app"
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash "$ROOT/tests/app/session.sh" measure
