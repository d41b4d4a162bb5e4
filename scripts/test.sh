#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds every binary once,
# runs unit and end-to-end tests (real ferry-server, real ferry processes,
# a real Secret Service for the keyring test), the UI's unit tests, the
# page's accessibility check in Chromium, and the desktop app's end-to-end
# test under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/setup.sh

echo "== formatting"
cargo fmt --all --check || { echo "cargo fmt --check: run \`cargo fmt --all\` and commit the result" >&2; exit 1; }

echo "== build (once; the tests share these binaries)"
(cd ui && npx vite build >/dev/null)
cargo build --workspace --bins --tests

# Lints run beside the tests, which mostly wait on processes and sockets:
# their own target dir (no lock shared with the test builds), at low
# priority, checked before the app's end-to-end test.
CLIPPY_OUT=$(mktemp)
(nice -n 10 env CARGO_TARGET_DIR=target/clippy cargo clippy --workspace --all-targets -- -D warnings \
  >"$CLIPPY_OUT" 2>&1) &
CLIPPY_PID=$!
# The release build the packages are made of, the same way (its own target
# dir, low priority), checked at the end; as root only (the check installs
# the packages).
PACKAGE_OUT=$(mktemp)
PACKAGE_PID=""
if [ "$(id -u)" = 0 ]; then
  (nice -n 10 env CARGO_TARGET_DIR=target/package bash -c '
     command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
     cargo build --release -p ferry-desktop -p ferry-window -p ferry-cli -p ferry-server' >"$PACKAGE_OUT" 2>&1) &
  PACKAGE_PID=$!
fi

echo "== a throwaway PostgreSQL cluster on loopback for the server tests"
PG_HOME=$(mktemp -d)
eval "$(scripts/pg-test-cluster.sh start "$PG_HOME")"
export FERRY_REQUIRE_POSTGRES=1

echo "== Rust unit and end-to-end tests (with a real Secret Service)"
export FERRY_REQUIRE_KEYRING=1
# CI runs as root on a fresh machine: the read-only and full-disk tests must
# really run (tmpfs mounts, prlimit), never skip.
export FERRY_REQUIRE_MOUNTS=1
# A throwaway keyring (its own dir and password), so the user's is never touched.
KEYRING_HOME=$(mktemp -d)
trap 'scripts/pg-test-cluster.sh stop "$PG_HOME"; rm -rf "$KEYRING_HOME" "$PG_HOME" "$CLIPPY_OUT" "$PACKAGE_OUT"' EXIT
export KEYRING_HOME
dbus-run-session -- bash -c '
  printf %s ferry-test | XDG_DATA_HOME="$KEYRING_HOME" gnome-keyring-daemon --unlock --components=secrets >/dev/null
  cargo test --workspace --no-fail-fast -- --test-threads=4
'

echo "== the server suites again, on PostgreSQL (and the multi-node tests)"
FERRY_TEST_BACKEND=postgres cargo test --workspace --no-fail-fast \
  --test server_auth --test server_push --test server_pull --test server_orgs \
  --test server_bad_input --test server_lifecycle --test live_changes --test security --test server_backup \
  --test server_metrics --test server_restore --test server_schemas -- --test-threads=4

echo "== lints (cargo clippy --workspace --all-targets -- -D warnings)"
if ! wait "$CLIPPY_PID"; then
  cat "$CLIPPY_OUT" >&2
  echo "clippy found warnings: fix them (cargo clippy --workspace --all-targets -- -D warnings)" >&2
  exit 1
fi
tail -1 "$CLIPPY_OUT"

echo "== the page's accessibility (axe-core in Chromium: every view, en and nb, light and dark)"
(cd ui && npm run a11y)

echo "== desktop app: front-end unit tests and end-to-end under Xvfb"
APP_E2E_SKIP_INSTALL=1 scripts/app-e2e.sh

echo "== packages: built, checked, installed, run from /usr/bin, removed"
if [ -n "$PACKAGE_PID" ]; then
  if ! wait "$PACKAGE_PID"; then
    cat "$PACKAGE_OUT" >&2
    echo "the release build for the packages failed" >&2
    exit 1
  fi
  CARGO_TARGET_DIR=target/package PACKAGE_SKIP_BUILD=1 tests/packages/check.sh
else
  echo "skipped: installing packages needs root (CI runs as root)"
fi
