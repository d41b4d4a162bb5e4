#!/usr/bin/env bash
# Builds and tests Ferry's desktop app from a fresh Debian (bookworm or later):
# installs the system packages, the npm packages and tauri-driver, runs the
# front-end unit tests (Vitest) and the app's Rust tests (incl. the check
# that ui/src/bindings matches the Rust types), builds the app (ferry-app,
# the tray process, and ferry-window, the window it starts), then runs the
# end-to-end test of the real binaries in demo mode under Xvfb + a private
# D-Bus session (window via tauri-driver/WebKitWebDriver, tray via D-Bus).
#
#   scripts/app-e2e.sh                 # everything
#   SCREENSHOTS=DIR scripts/app-e2e.sh # also screenshots of the real window into DIR
#                                      # (docs/screenshots: cd ui && npm run a11y -- --screenshots)
#   APP_E2E_SKIP_INSTALL=1 ...         # skip apt/npm/cargo installs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${APP_E2E_SKIP_INSTALL:-}" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  PKGS="build-essential pkg-config curl procps libdbus-1-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev
        librsvg2-dev libxdo-dev libssl-dev xvfb xauth webkit2gtk-driver gnome-keyring dbus dbus-x11
        python3 python3-dbus-next"
  missing=""
  for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
  fi
  python3 -c 'import dbus_next' 2>/dev/null || python3 -m pip install --quiet dbus-next
  command -v tauri-driver >/dev/null || cargo install tauri-driver --locked
  (cd ui && npm ci --no-audit --no-fund)
fi

echo "== front end: type check, unit tests, build"
(cd ui && npm run typecheck && npx vitest run && npx vite build)

echo "== app: Rust tests (bindings up to date, IPC, tray, notifications, commands)"
cargo test -p ferry-ipc -p ferry-desktop -p ferry-window

echo "== build the app (tray process and window), the server and the CLI (a second client)"
cargo build -p ferry-desktop -p ferry-window -p ferry-server -p ferry-cli
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export FERRY_APP="$TARGET_DIR/debug/ferry-app"
export FERRY_SERVER_BIN="$TARGET_DIR/debug/ferry-server"
export FERRY_CLI_BIN="$TARGET_DIR/debug/ferry"

echo "== end to end (Xvfb + private D-Bus session)"
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash "$ROOT/tests/app/session.sh" e2e
