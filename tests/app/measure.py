#!/usr/bin/env python3
"""Measures the app for docs/benchmarks-app.md: time from launch to tray icon,
and PSS (proportional set size, from /proc/PID/smaps_rollup) of all of the
app's processes — the app itself plus WebKit's web content and network
processes — with the window open, after closing it, and after reopening it.

Runs inside tests/app/session.sh (Xvfb + private D-Bus with the stand-in
tray watcher). Closes the window the way a window manager would: a
WM_DELETE_WINDOW client message (x11.py). Prints one JSON document.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from x11 import close_window, windows_named  # noqa: E402
APP = os.environ["FERRY_APP"]
BUS_OUT = os.environ["FERRY_BUS_OUT"]
SETTLE = float(os.environ.get("MEASURE_SETTLE", "20"))


def children_of():
    kids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        kids.setdefault(ppid, []).append(int(pid))
    return kids


def tree(root):
    kids = children_of()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return "?"


def snapshot(root):
    procs = [(comm(p), pss_kb(p)) for p in tree(root)]
    return {"total_mb": round(sum(k for _, k in procs) / 1024, 1),
            "processes": [{"name": n, "pss_mb": round(k / 1024, 1)} for n, k in procs]}


def bus(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "desktop_bus.py"), *args],
                          capture_output=True, text=True, timeout=30).stdout


def wait(what, fn, timeout=30, every=0.02):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise SystemExit(f"timed out: {what}")


def main():
    result = {}
    t0 = time.time()
    app = subprocess.Popen([APP, "--demo"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "HOME": os.environ["APP_HOME"]})

    def registered():
        try:
            lines = open(os.path.join(BUS_OUT, "tray.jsonl")).read().splitlines()
            return json.loads(lines[0]) if lines else None
        except FileNotFoundError:
            return None

    item = wait("tray icon", registered)
    result["launch_to_tray_ms"] = round((item["at"] - t0) * 1000)
    wait("window", lambda: windows_named("Ferry"))
    result["launch_to_window_ms"] = round((time.time() - t0) * 1000)
    time.sleep(SETTLE)
    result["window_open"] = snapshot(app.pid)

    for w in windows_named("Ferry"):
        close_window(w)
    wait("window gone", lambda: not windows_named("Ferry"))
    time.sleep(10)
    result["window_closed"] = snapshot(app.pid)
    result["app_still_running_after_close"] = app.poll() is None

    t = time.time()
    bus("click", "Open Ferry")
    wait("window again", lambda: windows_named("Ferry"), every=0.005)
    result["reopen_window_ms"] = round((time.time() - t) * 1000)
    time.sleep(5)
    result["window_reopened"] = snapshot(app.pid)

    bus("click", "Quit Ferry")
    try:
        result["quit_exit_code"] = app.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.kill()
        result["quit_exit_code"] = "killed after 20 s"

    # A normal launch at login: own data dir, no demo server, no window.
    import tempfile
    with tempfile.TemporaryDirectory() as data:
        plain = subprocess.Popen([APP, "--minimized", "--data-dir", data], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env={**os.environ, "HOME": os.environ["APP_HOME"]})
        time.sleep(SETTLE)
        result["normal_start_at_login"] = snapshot(plain.pid)
        plain.terminate()
        plain.wait(timeout=20)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
