#!/usr/bin/env bash
# The packages as a user gets them, on this machine (as root): built by
# scripts/package.sh, checked (lintian, desktop-file-validate, appstreamcli),
# installed with apt-get, then run from /usr/bin: the packaged server serves
# on loopback, the packaged `ferry` syncs with it, the packaged app runs the
# app's end-to-end checks in demo mode under Xvfb. Finally removed (and
# purged): nothing of theirs may stay behind. Prints the package sizes.
#
#   tests/packages/check.sh                    # builds the packages first
#   PACKAGE_SKIP_BUILD=1 tests/packages/check.sh   # target/release is current
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "installs packages: run as root (CI does)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
PACKAGES="ferry ferry-cli ferry-server"
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "packages: $*" >&2; exit 1; }

scripts/package.sh
debs=(dist/*.deb)
[ ${#debs[@]} = 3 ] || fail "expected 3 packages in dist/, got ${debs[*]}"

echo "== lintian, desktop-file-validate, appstreamcli"
# Errors fail; warnings are shown (known: no man pages yet, and the
# settings file is 0600 on purpose: it may hold PGPASSWORD).
lintian --fail-on error "${debs[@]}"
desktop-file-validate crates/ferry-desktop/packaging/dev.ferrysync.Ferry.desktop
appstreamcli validate --no-net crates/ferry-desktop/packaging/dev.ferrysync.Ferry.metainfo.xml

echo "== install with apt-get (dependencies from the archive)"
# A fresh machine's view: none of them installed before.
dpkg --purge $PACKAGES >/dev/null 2>&1 || true
apt-get install -y --no-install-recommends "${debs[@]/#/./}"
for p in $PACKAGES; do dpkg-query -L "$p" > "$WORK/$p.files"; done

echo "== one release everywhere"
v_cli=$(/usr/bin/ferry --version | awk '{print $2}')
v_app=$(/usr/bin/ferry-app --version | awk '{print $2}')
v_srv=$(/usr/bin/ferry-server --version | awk '{print $2}')
v_pkg=$(dpkg-query -W -f '${Version}' ferry)
echo "ferry $v_cli, ferry-app $v_app, ferry-server $v_srv, package $v_pkg"
[ "$v_cli" = "$v_app" ] && [ "$v_app" = "$v_srv" ] && [ "${v_pkg%%-*}" = "$v_cli" ] || fail "versions differ"

echo "== the packaged server and the packaged CLI"
UNIT=$(dpkg-query -L ferry-server | grep '/systemd/system/ferry-server.service$') || fail "no systemd unit installed"
# The unit as installed, naming the installed binary.
verified=$(systemd-analyze verify "$UNIT" 2>&1) || fail "systemd-analyze verify $UNIT: $verified"
if echo "$verified" | grep -q ferry-server.service; then fail "warnings about the installed unit: $verified"; fi
[ "$(stat -c %a /etc/ferry-server/ferry-server.env)" = 600 ] || fail "the environment file must be root-only"
DB="$WORK/server.db"
printf %s pw-ann | /usr/bin/ferry-server --db "$DB" user add ann --org north --password-stdin
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/ferry-server --db "$DB" --listen "127.0.0.1:$PORT" serve > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
C="$WORK/client"
ferry() { /usr/bin/ferry --data-dir "$C" --token-file "$WORK/tokens.json" "$@"; }
ferry init --server "http://127.0.0.1:$PORT" >/dev/null
printf %s pw-ann | ferry login --user ann --password-stdin >/dev/null
ferry put activity pkg-1 '{"title": "installed from a package"}' >/dev/null
ferry sync >/dev/null
/usr/bin/ferry-server --db "$DB" dump | grep -q '"record_id":"pkg-1"' || fail "the record did not reach the server"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
echo "ok: installed ferry synced with the installed ferry-server"

echo "== the packaged app: end to end under Xvfb (window, tray, notifications, login entry)"
FERRY_APP=/usr/bin/ferry-app FERRY_SERVER_BIN=/usr/bin/ferry-server FERRY_CLI_BIN=/usr/bin/ferry \
  xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash "$ROOT/tests/app/session.sh" e2e

echo "== removal leaves nothing behind (users' data dirs are theirs)"
apt-get remove -y $PACKAGES >/dev/null
left=$(cat "$WORK"/*.files | while read -r f; do [ -f "$f" ] && echo "$f"; done | grep -v '^/etc/ferry-server/' || true)
[ -z "$left" ] || fail "files left after apt-get remove: $left"
# Configuration stays until purged, as Debian does it (dpkg: apt knows
# local packages only while they are installed).
dpkg --purge $PACKAGES >/dev/null
[ ! -e /etc/ferry-server ] || fail "/etc/ferry-server left after purge"
echo "ok: removed without a trace"

echo "== sizes"
for d in "${debs[@]}"; do
  printf '%s: %s KiB download, %s KiB installed\n' "$(basename "$d")" "$(( $(stat -c %s "$d") / 1024 ))" \
    "$(dpkg-deb -f "$d" Installed-Size)"
done
