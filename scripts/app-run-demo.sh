#!/usr/bin/env bash
# Installs what is missing, builds Ferry's desktop app and starts it in demo
# mode on your display: an embedded server with sample data and a second
# device, so within a minute you see the queue fill and drain, a conflict to
# resolve and a notification. Uses its own data dir
# (~/.local/share/ferry-demo, reset at each launch); a real setup is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS="build-essential pkg-config libdbus-1-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi
if ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
(cd ui && npx vite build)
cargo build --release -p ferry-desktop -p ferry-window
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo target)
exec "$TARGET_DIR/release/ferry-app" --demo "$@"
