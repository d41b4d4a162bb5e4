#!/usr/bin/env bash
# Installs everything Ferry needs on a fresh Debian/Ubuntu machine: system
# packages (webkit2gtk for the app, D-Bus + gnome-keyring for the keyring,
# Xvfb and WebKitWebDriver for the app's end-to-end tests, PostgreSQL and
# HAProxy for the server's multi-node tests, systemd-analyze for its unit,
# lintian, desktop-file-validate and appstreamcli for the packages, Chromium
# for the page's accessibility check), the UI's npm
# packages, and tauri-driver. Safe to run again: it only installs what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS="build-essential pkg-config curl procps iproute2 util-linux libssl-dev libdbus-1-dev
      libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev
      xvfb xauth webkit2gtk-driver gnome-keyring dbus dbus-x11 python3
      postgresql haproxy systemd lintian desktop-file-utils appstream chromium"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "== installing Debian packages:$missing"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi
if ! command -v npm >/dev/null; then
  echo "== installing Node.js and npm"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
python3 -c 'import dbus_next' 2>/dev/null || python3 -m pip install --quiet dbus-next
command -v tauri-driver >/dev/null || cargo install tauri-driver --locked
[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
