#!/usr/bin/env python3
"""End-to-end test of the real Ferry app in demo mode.

Run by scripts/app-e2e.sh inside `xvfb-run dbus-run-session`, with
desktop_bus.py serving the tray watcher and the notification service, and
tauri-driver (+ WebKitWebDriver) on 127.0.0.1:4444. Drives the window
through WebDriver, the tray through D-Bus, and checks the server's records
with `ferry-server dump`.

Environment: FERRY_APP (app binary), FERRY_SERVER_BIN, FERRY_CLI_BIN (the
`ferry` command line, a second client), FERRY_DEMO_DIR, FERRY_BUS_OUT,
SCREENSHOTS (dir), APP_HOME (the app's HOME: autostart entries and the
diagnostics archive land there, not in the real home).
"""
import base64
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

WD = "http://127.0.0.1:4444"
HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.environ["FERRY_APP"]
SERVER_BIN = os.environ["FERRY_SERVER_BIN"]
CLI_BIN = os.environ.get("FERRY_CLI_BIN", "")
DEMO_DIR = os.environ["FERRY_DEMO_DIR"]
BUS_OUT = os.environ["FERRY_BUS_OUT"]
SHOTS = os.environ.get("SCREENSHOTS", "")
APP_HOME = os.environ["APP_HOME"]  # the app's HOME (see session.sh)

passed, failed = 0, 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}", flush=True)


def wd(method, path, body=None, timeout=60, tries=3):
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(tries):
        req = urllib.request.Request(WD + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:400]!r}")
        except (http.client.RemoteDisconnected, ConnectionResetError) as e:
            # Seen on a loaded machine: tauri-driver drops the connection
            # ("client error (SendRequest)") while forwarding to
            # WebKitWebDriver, apparently on a stale keep-alive connection.
            # Every call made here is safe to repeat, so resend.
            if attempt == tries - 1:
                raise
            print(f"(webdriver {method} {path}: {e}; retrying)", flush=True)
            time.sleep(0.5)


class Session:
    def __init__(self):
        caps = {"capabilities": {"alwaysMatch": {"tauri:options": {"application": APP, "args": ["--demo"]}}}}
        self.id = wd("POST", "/session", caps, timeout=120)["sessionId"]

    def s(self, method, path, body=None):
        return wd(method, f"/session/{self.id}{path}", body)

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find_all(self, css):
        return self.s("POST", "/elements", {"using": "css selector", "value": css})

    def click(self, css):
        els = self.find_all(css)
        if not els:
            raise RuntimeError(f"nothing matches {css}")
        el = list(els[0].values())[0]
        self.s("POST", f"/element/{el}/click", {})

    def type_into(self, css, text):
        """Clears an input and types into it, as a person would."""
        els = self.find_all(css)
        if not els:
            raise RuntimeError(f"nothing matches {css}")
        el = list(els[0].values())[0]
        self.s("POST", f"/element/{el}/clear", {})
        self.s("POST", f"/element/{el}/value", {"text": text})

    def text(self, css):
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css)

    def count(self, css):
        return self.js("return document.querySelectorAll(arguments[0]).length;", css)

    def wait(self, what, fn, timeout=60, every=0.25):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = fn()
                if last:
                    return last
            except RuntimeError as e:
                last = e
            time.sleep(every)
        raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")

    def shot(self, name):
        if not SHOTS:
            return
        # Screenshots document, they do not test: a slow machine may drop
        # one (the driver times out under load), so retry, then carry on.
        for attempt in range(3):
            try:
                png = base64.b64decode(self.s("GET", "/screenshot"))
                break
            except Exception as e:  # noqa: BLE001
                print(f"(screenshot {name}, try {attempt + 1}: {e})", flush=True)
                time.sleep(2)
        else:
            return
        with open(os.path.join(SHOTS, f"{name}.png"), "wb") as f:
            f.write(png)

    def go(self, view):
        self.click(f'[data-testid="nav-{view}"]')
        self.wait(f"view {view}", lambda: self.count(f'[data-testid="view-{view}"]') == 1, timeout=10)

    # ---- the keyboard, as someone who does not use a mouse: real key
    # ---- events through WebDriver, never .click() or activation by script.
    use_actions = True

    def press(self, *keys):
        """Presses each key (down, then up) in order."""
        if self.use_actions:
            acts = []
            for k in keys:
                acts += [{"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]
            try:
                self.s("POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": acts}]})
                return
            except RuntimeError as e:
                # A driver without the Actions API: type into the focused element instead.
                print(f"(webdriver actions unavailable: {e}; sending keys to the focused element)", flush=True)
                self.use_actions = False
        el = list(self.s("GET", "/element/active").values())[0]
        self.s("POST", f"/element/{el}/value", {"text": "".join(keys)})

    def chord(self, modifier, key):
        """Presses key while modifier is held (Ctrl+A)."""
        if self.use_actions:
            acts = [{"type": "keyDown", "value": modifier}, {"type": "keyDown", "value": key},
                    {"type": "keyUp", "value": key}, {"type": "keyUp", "value": modifier}]
            self.s("POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": acts}]})
            self.s("DELETE", "/actions")
        else:
            el = list(self.s("GET", "/element/active").values())[0]
            self.s("POST", f"/element/{el}/value", {"text": modifier + key + KEY_NULL})

    def focused(self, css):
        return self.js("const a = document.activeElement; return !!a && a.matches(arguments[0]);", css)

    def focus_desc(self):
        """What has the focus, for failure messages."""
        return self.js("const a = document.activeElement;"
                       "return a ? a.outerHTML.slice(0, 160) : null;")

    def tab_to(self, css, limit=400):
        """Presses Tab until the focused element matches css; the number of
        presses, or None if it never got there."""
        for n in range(limit):
            if self.focused(css):
                return n
            self.press(TAB)
        return limit if self.focused(css) else None

    def key_go(self, view):
        """Goes to a view with the keyboard: Tab to its navigation entry, Enter."""
        if self.tab_to(f'[data-testid="nav-{view}"]') is None:
            raise RuntimeError(f"Tab never reaches nav-{view} (focus: {self.focus_desc()})")
        self.press(ENTER)
        self.wait(f"view {view}", lambda: self.count(f'[data-testid="view-{view}"]') == 1, timeout=10)

    def invoke(self, command, args=None):
        """Calls one of the window's commands as the page does; raises with
        the app's message when it refuses."""
        r = self.s("POST", "/execute/async", {
            "script": "const done = arguments[arguments.length - 1];"
                      "window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1])"
                      ".then(v => done({ok: v === undefined ? null : v}), e => done({err: String(e)}));",
            "args": [command, args or {}]})
        if "err" in r:
            raise RuntimeError(f"{command}: {r['err']}")
        return r["ok"]

    def close(self):
        try:
            wd("DELETE", f"/session/{self.id}", timeout=30)
        except Exception as e:  # the app may already be gone after Quit
            print(f"(session end: {e})")


# WebDriver's key codes.
TAB, ENTER, SPACE, BACKSPACE, CONTROL, KEY_NULL, END = "\ue004", "\ue007", "\ue00d", "\ue003", "\ue009", "\ue000", "\ue010"


def bus(*args):
    r = subprocess.run([sys.executable, os.path.join(HERE, "desktop_bus.py"), *args],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"desktop_bus {args}: {r.stderr.strip()}")
    return r.stdout


def menu():
    return json.loads(bus("menu"))


def server_records():
    info = json.load(open(os.path.join(DEMO_DIR, "demo.json")))
    r = subprocess.run([SERVER_BIN, "--db", info["server_db"], "dump"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    text = r.stdout.strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    return {(x["entity"], x.get("id") or x.get("record_id")): x for x in rows}


def fields_of(rec):
    return rec.get("data") or rec.get("fields") or {}


def second_device_record(entity, rid):
    """The record as the demo's second device has it: the colleague's own
    engine and data dir (always online, pulling every 5 s), read-only."""
    db = sqlite3.connect(f"file:{os.path.join(DEMO_DIR, 'second-device', 'ferry.db')}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT data FROM records WHERE entity = ? AND id = ?", (entity, rid)).fetchone()
        return json.loads(row[0]) if row and row[0] else None
    finally:
        db.close()


def cli_client_record(entity, rid):
    """The record as a client that never saw it has it: the `ferry` command
    line with a fresh data dir, signed in to the demo server, after one sync."""
    if not CLI_BIN:
        raise RuntimeError("FERRY_CLI_BIN is not set")
    info = json.load(open(os.path.join(DEMO_DIR, "demo.json")))
    home = tempfile.mkdtemp(prefix="ferry-cli-client-")
    env = {**os.environ, "FERRY_DATA_DIR": os.path.join(home, "data"), "FERRY_TOKEN_FILE": os.path.join(home, "tokens")}

    def ferry(*args, stdin=None):
        r = subprocess.run([CLI_BIN, *args], input=stdin, capture_output=True, text=True, timeout=60, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"ferry {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
        return r.stdout
    ferry("init", "--server", info["server"])
    ferry("login", "--user", info["user"], "--password-stdin", stdin="demo-password\n")
    ferry("sync")
    return json.loads(ferry("get", entity, rid))


def demo_phase():
    try:
        return json.load(open(os.path.join(DEMO_DIR, "demo.json"))).get("phase")
    except (OSError, ValueError):
        return None


def main():
    t0 = time.time()
    s = Session()
    try:
        run(s, t0)
    finally:
        s.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def engine_setting(key):
    """A value from this device's engine database (read-only; WAL allows a
    reader next to the running app)."""
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(DEMO_DIR, 'this-device', 'ferry.db')}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def procs(pattern):
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()


# The window's process by its program, not any command line that names it
# (a build of ferry-window running beside the test is not the window).
WINDOW = r"^([^ ]*/)?ferry-window( |$)"


def wait_for(what, fn, timeout=30, every=0.25):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")


def window_shown(timeout=15):
    import x11
    try:
        wait_for("the window", lambda: x11.windows_named("Ferry"), timeout=timeout)
        return True
    except TimeoutError:
        return False


def close_window(timeout=15):
    """Closes the window like a window manager does; True once its process
    (and WebKit's) are gone."""
    import x11
    for w in x11.windows_named("Ferry"):
        x11.close_window(w)
    try:
        wait_for("the window process (and WebKit's) to end",
                 lambda: not procs(WINDOW) and not procs("WebKit(Web|Network)Process") and not x11.windows_named("Ferry"),
                 timeout=timeout)
        return True
    except TimeoutError:
        return False


def run(s, t0):
    # ---- the window comes up in demo mode; offline, the queue fills
    s.wait("the overview", lambda: s.count('[data-testid="view-overview"]') == 1, timeout=60)
    check("window shows the overview", True)
    s.wait("sample data queued", lambda: demo_phase() in ("queueing", "uploading", "colliding", "conflict"), timeout=60)
    s.go("queue")
    n = s.wait("queued rows", lambda: s.count('[data-testid="queue-row"]') >= 12 and s.count('[data-testid="queue-row"]'), timeout=30)
    check("queue fills while offline", n > 0, n)
    s.shot("queue")
    if demo_phase() == "queueing":
        m = wait_for("the tray to say offline", lambda: (lambda m: m["picture"] == "offline" and m)(menu()), timeout=15)
        check("tray picture says offline while the network is unplugged", m["picture"] == "offline", m["picture"])
    s.go("overview")
    s.wait("waiting > 0", lambda: (s.text('[data-testid="count-waiting"] .card-n') or "0") != "0", timeout=30)
    s.shot("overview-waiting")

    # ---- back online: the whole backlog reaches the server, the window says so
    def all_samples_on_server():
        recs = server_records()
        kinds = [e for (e, _) in recs]
        return (kinds.count("activity") >= 24 and kinds.count("expense") >= 12 and kinds.count("contact") >= 10) and recs
    try:
        wait_for("46 sample records on the server", all_samples_on_server, timeout=90)
        check("queue drained: every sample record is on the server", True)
    except TimeoutError as e:
        check("queue drained: every sample record is on the server", False, e)

    # ---- the tray reflects it, over D-Bus
    m = menu()
    labels = [i["label"] for i in m["items"]]
    check("tray menu items", labels[1:] == ["Sync now", "Pause", "Open Ferry", "Start at login", "Quit Ferry"] or
          labels[1:] == ["Sync now", "Resume", "Open Ferry", "Start at login", "Quit Ferry"], labels)
    check("tray status line is disabled", m["items"][0]["enabled"] is False, m["items"][0])

    # ---- a conflict appears and is resolved: keep mine, then per field
    s.wait("the conflict phase", lambda: demo_phase() == "conflict", timeout=60)
    s.go("conflicts")
    s.wait("two conflicts", lambda: s.count('[data-testid="conflict"]') >= 2, timeout=60)
    elapsed = time.time() - t0
    check("conflicts appear within a minute of launch", elapsed < 60, f"{elapsed:.0f} s")
    s.shot("conflicts")
    # The window reloads on the conflict events; the tray follows the status,
    # which the app coalesces (~120 ms) before it goes out over D-Bus.
    try:
        m = wait_for("the tray to count the conflicts",
                     lambda: (lambda m: "2 conflicts" in m["items"][0]["label"] and m)(menu()), timeout=10)
    except TimeoutError:
        m = menu()
    check("tray status line counts the conflicts", "2 conflicts" in m["items"][0]["label"], m["items"][0]["label"])
    check("tray picture asks for attention", m["picture"] == "attention" and m["status"] == "NeedsAttention",
          (m["picture"], m["status"]))
    check("tray tooltip carries the status line", "2 conflicts" in (m["tooltip"] or ""), m["tooltip"])

    # ---- while they wait for the user, a notification says so (once the
    # ---- quiet period after reconnecting has passed)
    def read_notes():
        # The file appears with the first notification: keep waiting.
        try:
            with open(os.path.join(BUS_OUT, "notifications.jsonl")) as f:
                return [json.loads(x) for x in f]
        except FileNotFoundError:
            return []
    try:
        notes = wait_for("a notification about the conflicts",
                         lambda: (lambda ns: any("conflict" in n["body"] for n in ns) and ns)(read_notes()), timeout=60)
    except TimeoutError:
        notes = read_notes()
    check("a notification said a conflict needs the user", any("conflict" in n["body"] for n in notes), notes)

    # Keep mine, with the keyboard alone: Tab to the button, Enter.
    mine = '[data-testid="conflict"][data-record="act-001"] [data-testid="keep-mine"]'
    presses = s.tab_to(mine)
    check("keyboard: Tab reaches act-001's Keep mine", presses is not None, s.focus_desc())
    s.press(ENTER)
    try:
        s.wait("act-001 resolved", lambda: s.count('[data-testid="conflict"][data-record="act-001"]') == 0, timeout=20)
        check("keyboard: Enter on Keep mine resolves the conflict", True, f"{presses} Tab presses")
    except TimeoutError as e:
        check("keyboard: Enter on Keep mine resolves the conflict", False, e)
        s.click(mine)  # so the rest of the test can go on
        s.wait("act-001 resolved", lambda: s.count('[data-testid="conflict"][data-record="act-001"]') == 0, timeout=20)
    card = '[data-testid="conflict"][data-record="act-002"]'
    differing = s.js("return [...document.querySelectorAll(arguments[0] + ' tr.differs')].map(r => r.dataset.field);", card)
    check("act-002 highlights the differing fields", set(differing) == {"participants", "notes", "date"}, differing)
    picks = {"participants": "remote", "notes": "local", "date": "remote"}
    for field, side in picks.items():
        s.click(f'{card} [data-testid="pick-{side}-{field}"]')
    s.shot("conflict-picks")
    s.click(f'{card} [data-testid="apply-picks"]')
    s.wait("no conflicts left", lambda: s.count('[data-testid="conflicts-empty"]') == 1, timeout=20)
    check("both conflicts resolved in the window", True)

    def server_has_choices():
        recs = server_records()
        a1 = fields_of(recs[("activity", "act-001")])
        a2 = fields_of(recs[("activity", "act-002")])
        return (a1.get("hours") == 3 and a1.get("notes") == "Two new participants joined" and a1.get("title") == "Walk & talk"
                and a2.get("participants") == 7 and a2.get("notes") == "Rain: moved indoors" and a2.get("date") == "2025-03-04") and (a1, a2)
    try:
        a1, a2 = s.wait("the server to have the chosen values", server_has_choices, timeout=30)
        check("server has keep-mine values for act-001", True, a1)
        check("server has the per-field picks for act-002", True, a2)
    except TimeoutError as e:
        check("server has the chosen values", False, e)

    # ---- the notifications so far: summaries, not one per item
    try:
        notes = wait_for("a 'back online' notification",
                         lambda: (lambda ns: any("Back online" in n["body"] for n in ns) and ns)(read_notes()), timeout=30)
    except TimeoutError:
        notes = read_notes()
    check("a notification said the backlog was uploaded after being offline",
          any("Back online" in n["body"] for n in notes), notes)
    check("notifications are summaries (at most 3 so far)", 0 < len(notes) <= 3, len(notes))

    # ---- other views, for the screenshots
    s.go("history")
    s.wait("sync runs", lambda: s.count('[data-testid="sync-runs"] tbody tr') > 0, timeout=20)
    check("history lists sync runs", True)
    s.shot("history")
    # ---- the sample expense the demo server's rules refuse: its reason,
    # ---- corrected in the window, uploaded
    # ---- (with the keyboard alone: Tab, Enter, typing, Space)
    try:
        s.key_go("failures")
        check("keyboard: Tab and Enter open the Failures view", True)
    except (RuntimeError, TimeoutError) as e:
        check("keyboard: Tab and Enter open the Failures view", False, e)
        s.go("failures")
    card = '[data-testid="failure"]'
    s.wait("the refused expense", lambda: s.count(card) == 1, timeout=30)
    reason = s.text(card + ' [data-testid="failure-reason"]') or ""
    check("the refused expense shows the server's reason, naming the field and rule",
          "validation" in reason and "amount" in reason and "exclusiveMinimum" in reason, reason)
    s.shot("failures")
    check("keyboard: Tab reaches Edit and send again", s.tab_to(card + ' [data-testid="edit"]') is not None, s.focus_desc())
    s.press(ENTER)
    s.wait("the correction form", lambda: s.count('[data-testid="edit-form"]') == 1, timeout=10)
    amount = '[data-testid="edit-form"] [data-field="amount"]'
    check("keyboard: Tab reaches the amount field", s.tab_to(amount) is not None, s.focus_desc())
    s.chord(CONTROL, "a")
    s.press(BACKSPACE)
    value = lambda: s.js("return document.querySelector(arguments[0]).value;", amount)  # noqa: E731
    for _ in range(len(value() or "")):  # a field that did not take Ctrl+A
        s.press(END)
        s.press(BACKSPACE)
    s.press("2", "5", "0")
    check("keyboard: the amount is typed", value() == "250", value())
    s.shot("failure-correcting")
    check("keyboard: Tab reaches Send corrected change",
          s.tab_to('[data-testid="send-corrected"]') is not None, s.focus_desc())
    s.press(SPACE)
    try:
        fixed = s.wait("the corrected expense on the server",
                       lambda: (lambda r: r and fields_of(r).get("amount") == 250 and r)(server_records().get(("expense", "exp-013"))),
                       timeout=30)
        check("the corrected expense reached the server", fields_of(fixed).get("description") == "Taxi to the hospital visit", fixed)
    except TimeoutError as e:
        check("the corrected expense reached the server", False, e)
    s.wait("no failures left", lambda: s.count('[data-testid="failures-empty"]') == 1, timeout=20)
    check("the Failures view is empty after the correction", True)

    # ---- the correction is visible on other clients: the demo's second
    # ---- device, and a `ferry` command line that signs in afresh
    try:
        other = wait_for("the second device to pull the corrected expense",
                         lambda: (lambda r: r and r.get("amount") == 250 and r)(second_device_record("expense", "exp-013")),
                         timeout=30)
        check("the demo's second device has the corrected expense", other.get("description") == "Taxi to the hospital visit", other)
    except TimeoutError as e:
        check("the demo's second device has the corrected expense", False, e)
    try:
        got = cli_client_record("expense", "exp-013")
        check("a fresh `ferry` client signed in to the server gets the corrected expense",
              got.get("amount") == 250 and got.get("description") == "Taxi to the hospital visit", got)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        check("a fresh `ferry` client signed in to the server gets the corrected expense", False, e)
    s.go("settings")
    s.wait("settings", lambda: s.count('[data-testid="policy-activity"]') == 1, timeout=10)
    check("settings shows the activity policy as manual",
          s.js('return document.querySelector("[data-testid=policy-activity]").value') == "manual")
    s.shot("settings")
    s.go("overview")
    s.wait("up to date", lambda: s.text('[data-testid="state-word"]') == "Up to date", timeout=30)
    s.shot("overview")
    m = wait_for("the tray to say synced", lambda: (lambda m: m["picture"] == "synced" and m)(menu()), timeout=10)
    check("tray picture says synced when all is done", m["picture"] == "synced" and m["status"] == "Active", m["picture"])

    # ---- the language: Norwegian at once in the tray, the window told
    english = ["Sync now", "Pause", "Open Ferry", "Start at login", "Quit Ferry"]
    norwegian = ["Synkroniser nå", "Sett på pause", "Åpne Ferry", "Start ved innlogging", "Avslutt Ferry"]
    check("the app speaks English by default here (LANG=C.UTF-8)", s.invoke("app_info")["locale"] == "en")
    s.invoke("set_language", {"language": "nb"})
    try:
        m = wait_for("a Norwegian tray", lambda: (lambda m: m["items"][1]["label"] == norwegian[0] and m)(menu()), timeout=10)
        labels = [i["label"] for i in m["items"]]
        check("set_language nb: the tray menu is Norwegian at once", labels[1:] == norwegian, labels)
        check("set_language nb: so are the status line and tooltip",
              "synkronisert" in labels[0] and "synkronisert" in (m["tooltip"] or ""), (labels[0], m["tooltip"]))
    except TimeoutError as e:
        check("set_language nb: the tray menu is Norwegian at once", False, e)
    check("the window is told: app_info says nb, settings say nb",
          s.invoke("app_info")["locale"] == "nb" and s.invoke("settings")["language"] == "nb")
    nav = lambda: s.text('[data-testid="nav-settings"]') or ""  # noqa: E731
    try:
        s.wait("the window in Norwegian", lambda: "Innstillinger" in nav(), timeout=10)
        check("the open window reloads its words in Norwegian (settings-changed push)", True)
    except TimeoutError as e:
        check("the open window reloads its words in Norwegian (settings-changed push)", False, e)
    try:
        s.invoke("set_language", {"language": "klingon"})
        check("an unknown language is refused", False)
    except RuntimeError as e:
        check("an unknown language is refused", "unknown language" in str(e), e)
    s.invoke("set_language", {"language": "system"})
    m = wait_for("the tray back in English", lambda: (lambda m: m["items"][1]["label"] == english[0] and m)(menu()), timeout=10)
    check("set_language system: back to the system's language", [i["label"] for i in m["items"]][1:] == english, m)
    try:
        s.wait("the window in English", lambda: "Settings" in nav(), timeout=10)
        check("the window is back in English", True)
    except TimeoutError as e:
        check("the window is back in English", False, e)

    # ---- a title field set from the window shows in the settings
    s.invoke("set_title_field", {"entity": "expense", "field": "description"})
    rows = {r["entity"]: r for r in s.invoke("settings")["policies"]}
    check("set_title_field: the settings show it", rows["expense"]["title_field"] == "description", rows.get("expense"))
    s.invoke("set_title_field", {"entity": "expense", "field": None})
    rows = {r["entity"]: r for r in s.invoke("settings")["policies"]}
    check("set_title_field null: back to the default rule", rows["expense"]["title_field"] is None, rows.get("expense"))

    # ---- diagnostics: an archive in the download dir (here: home), with the app's log
    try:
        path = s.invoke("save_diagnostics", {"includeRecords": False})
        name = os.path.basename(path or "")
        check("save_diagnostics names the archive by the time",
              re.fullmatch(r"ferry-diagnostics-\d{8}-\d{6}(-\d+)?\.tar\.gz", name) is not None, path)
        check("save_diagnostics writes to the download dir, else home",
              os.path.dirname(path) in (APP_HOME, os.path.join(APP_HOME, "Downloads")) and os.path.isfile(path), path)
        with tarfile.open(path, "r:gz") as t:
            names = t.getnames()
        check("the diagnostics archive holds the app's log", any("ferry.log" in n for n in names), names)
    except (RuntimeError, OSError, tarfile.TarError) as e:
        check("save_diagnostics writes an archive", False, e)

    # ---- tray: Pause, Resume, Sync now, status line text
    bus("click", "Pause")
    s.wait("paused in the window", lambda: s.text('[data-testid="state-word"]') == "Paused", timeout=10)
    m = wait_for("the tray to say paused", lambda: (lambda m: m["picture"] == "paused" and m)(menu()), timeout=10)
    check("tray Pause pauses (menu now offers Resume)", any(i["label"] == "Resume" for i in m["items"]), m)
    check("tray status line says paused", m["items"][0]["label"].startswith("paused"), m["items"][0]["label"])
    check("tray picture says paused", m["picture"] == "paused", m["picture"])
    bus("click", "Resume")
    s.wait("resumed", lambda: s.text('[data-testid="state-word"]') in ("Up to date", "Syncing"), timeout=10)
    check("tray Resume resumes", True)
    time.sleep(1.5)
    before = int(engine_setting("last_sync_at") or 0)
    bus("click", "Sync now")
    try:
        after = wait_for("a new sync", lambda: (lambda v: v > before and v)(int(engine_setting("last_sync_at") or 0)), timeout=10)
        check("tray Sync now runs a sync (last sync time moves)", after > before, (before, after))
    except TimeoutError as e:
        check("tray Sync now runs a sync (last sync time moves)", False, e)
    line = menu()["items"][0]["label"]
    check("tray status line says synced just now", "synced just now" in line, line)

    # ---- start at login writes and removes the login entry (the demo's own
    # ---- entry: trying the demo never changes a real setup's)
    entry = os.path.join(APP_HOME, ".config", "autostart", "Ferry (demo).desktop")
    real_entry = os.path.join(APP_HOME, ".config", "autostart", "Ferry.desktop")
    bus("click", "Start at login")
    s.wait("autostart entry", lambda: os.path.exists(entry), timeout=10)
    text = open(entry).read()
    check("start at login writes the demo's login entry", "Exec=" in text and "--minimized" in text and "--demo" in text, text)
    check("the login entry starts this very program (the installed path when installed)",
          os.path.realpath(APP) in text, (APP, text))
    check("the demo leaves the real login entry alone", not os.path.exists(real_entry))
    check("tray check item is checked",
          wait_for("the check mark", lambda: next(i for i in menu()["items"] if i["label"] == "Start at login")["checked"] == 1, timeout=5))
    bus("click", "Start at login")
    s.wait("autostart entry removed", lambda: not os.path.exists(entry), timeout=10)
    check("turning it off removes the entry", True)

    # ---- closing the window ends its process (and WebKit's); the tray and
    # ---- engine keep running; a click on the tray icon and a second launch
    # ---- bring the window back
    check("closing the window ends the window process and WebKit's",
          close_window(), (procs(WINDOW), procs("WebKit(Web|Network)Process")))
    line = menu()["items"][0]["label"]
    check("tray and engine keep running with the window closed", "synced" in line, line)
    t = time.time()
    bus("activate")
    check("a click on the tray icon opens the window", window_shown(), f"{time.time() - t:.1f} s")
    check("closing it again ends its process", close_window())
    t = time.time()
    r = subprocess.run([APP, "--demo"], capture_output=True, text=True, timeout=30, env={**os.environ, "HOME": APP_HOME})
    check("second instance exits at once", r.returncode == 0 and time.time() - t < 10, (r.returncode, r.stderr[-300:]))
    check("a second launch opens the first instance's window", window_shown())

    # ---- Quit stops everything cleanly
    bus("click", "Quit Ferry")
    try:
        wait_for("everything to end", lambda: not procs(f"^{APP}") and not procs(WINDOW), timeout=15)
        ended = True
    except TimeoutError:
        ended = False
    check("Quit ends the app and its window", ended, (procs(f"^{APP}"), procs(WINDOW)))


if __name__ == "__main__":
    main()
