#!/usr/bin/env bash
# Builds Ferry's Debian packages into dist/ with cargo-deb:
#   ferry         the desktop app (ferry-app, ferry-window, icons, menu entry)
#   ferry-cli     the `ferry` command line (no desktop libraries)
#   ferry-server  the server and its systemd unit (no desktop libraries)
# Each declares the libraries its binaries link (dpkg-shlibdeps), so
# `apt install ./dist/ferry_*.deb` pulls in everything on a fresh Debian 12.
#
#   scripts/package.sh                 # release build, then the packages
#   PACKAGE_SKIP_BUILD=1 scripts/package.sh   # target/release is current
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
if [ -z "${PACKAGE_SKIP_BUILD:-}" ]; then
  [ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
  # The window serves the page built into it.
  (cd ui && npx vite build >/dev/null)
  cargo build --release -p ferry-desktop -p ferry-window -p ferry-cli -p ferry-server
fi
rm -rf dist && mkdir -p dist
for crate in ferry-desktop ferry-cli ferry-server; do
  # Stripped: the release profile keeps line tables for local profiling.
  cargo deb -p "$crate" --no-build --strip --output dist/ >/dev/null
done
ls -l dist/*.deb
