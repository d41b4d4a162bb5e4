#!/usr/bin/env bash
# Runs inside `xvfb-run dbus-run-session`: starts the stand-in tray watcher
# and notification service, then either the E2E test (with tauri-driver) or
# the memory/startup measurement. Everything the app writes goes to
# temporary dirs: the demo data, autostart entries, the D-Bus recordings.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MODE=${1:-e2e}
WORK=$(mktemp -d /tmp/ferry-app-test.XXXXXX)
# The app gets its own HOME: start-at-login writes ~/.config/autostart
# (the autostart crate ignores XDG_CONFIG_HOME), and a test must never touch
# the real one. The test's own tools keep the real HOME.
export FERRY_BUS_OUT="$WORK/bus" FERRY_DEMO_DIR="$WORK/demo" APP_HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config"
export XDG_DATA_HOME="$WORK/data" NO_AT_BRIDGE=1 WEBKIT_DISABLE_COMPOSITING_MODE=1
# The tests name the tray's items in English: whatever this machine's
# language, the app starts in English (the test switches to Norwegian itself).
unset LC_ALL LC_MESSAGES
export LANG=C.UTF-8
mkdir -p "$FERRY_BUS_OUT" "$XDG_CONFIG_HOME"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

python3 "$HERE/desktop_bus.py" serve > "$WORK/bus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$WORK/bus.log" 2>/dev/null && break; sleep 0.1; done

case "$MODE" in
  e2e)
    HOME="$APP_HOME" tauri-driver --port 4444 --native-driver "$(command -v WebKitWebDriver)" > "$WORK/driver.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break; sleep 0.1; done
    status=0
    python3 "$HERE/e2e.py" || status=$?
    if [ $status -ne 0 ]; then echo "--- app/driver log (tail)"; tail -60 "$WORK/driver.log"; fi
    exit $status
    ;;
  measure)
    python3 "$HERE/measure.py"
    ;;
esac
