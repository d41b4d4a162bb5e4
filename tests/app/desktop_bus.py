#!/usr/bin/env python3
"""Stand-ins for the desktop's session-bus services under Xvfb, and a client
for the tray menu.

A headless session has no panel, so nobody hosts tray icons and nobody shows
notifications. `serve` plays both parts:

- org.kde.StatusNotifierWatcher: the tray (ksni) registers Ferry's
  tray item here (StatusNotifierItem + com.canonical.dbusmenu), exactly as
  with a real panel; registrations are appended to $OUT/tray.jsonl with the
  time they arrived (launch-to-tray measurements read it).
- org.freedesktop.Notifications: every notification is appended to
  $OUT/notifications.jsonl.

The client side (`menu`, `click`, `wait-item`) talks to the registered item
like a panel would: reads the dbusmenu layout and sends "clicked" events.

Needs dbus-next (pip install dbus-next, or Debian's python3-dbus-next).
"""
import argparse
import asyncio
import hashlib
import json
import os
import struct
import sys
import time
import zlib

from dbus_next import BusType, Variant
from dbus_next.aio import MessageBus
from dbus_next.service import PropertyAccess, ServiceInterface, method, signal, dbus_property


def out_path(name):
    return os.path.join(os.environ.get("FERRY_BUS_OUT", "/tmp/ferry-bus"), name)


def append(name, obj):
    os.makedirs(os.path.dirname(out_path(name)), exist_ok=True)
    with open(out_path(name), "a") as f:
        f.write(json.dumps(obj) + "\n")


class Watcher(ServiceInterface):
    def __init__(self, bus):
        super().__init__("org.kde.StatusNotifierWatcher")
        self.bus = bus
        self.items = []

    @method()
    def RegisterStatusNotifierItem(self, service: "s"):  # noqa: F821
        # Set by the message handler below: the sender of the current call.
        sender = self.bus._ferry_sender
        if service.startswith("/"):
            item = f"{sender}{service}"
            name, path = sender, service
        else:
            item = f"{service}/StatusNotifierItem"
            name, path = service, "/StatusNotifierItem"
        self.items.append(item)
        append("tray.jsonl", {"at": time.time(), "name": name, "path": path})
        self.StatusNotifierItemRegistered(item)

    @method()
    def RegisterStatusNotifierHost(self, service: "s"):  # noqa: F821
        pass

    @signal()
    def StatusNotifierItemRegistered(self, item) -> "s":  # noqa: F821
        return item

    @signal()
    def StatusNotifierHostRegistered(self) -> "":  # noqa: F722
        return None

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":  # noqa: F821
        return self.items

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: F821
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":  # noqa: F821
        return 0


class Notifications(ServiceInterface):
    def __init__(self):
        super().__init__("org.freedesktop.Notifications")
        self.next_id = 1

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",  # noqa: F821
               actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821
        nid = self.next_id
        self.next_id += 1
        append("notifications.jsonl", {"at": time.time(), "app": app_name, "summary": summary, "body": body})
        return nid

    @method()
    def CloseNotification(self, nid: "u"):  # noqa: F821
        pass

    @method()
    def GetCapabilities(self) -> "as":  # noqa: F821
        return ["body"]

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: F821
        return ["ferry-test", "ferry", "1", "1.2"]


async def serve():
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    bus._ferry_sender = None

    # dbus-next does not hand the sender to methods; remember it per message.
    def remember_sender(msg):
        bus._ferry_sender = msg.sender
        return None

    bus.add_message_handler(remember_sender)
    # Handlers run in order of registration, so ours must run before the
    # service dispatch: move it to the front.
    bus._user_message_handlers.insert(0, bus._user_message_handlers.pop())
    bus.export("/StatusNotifierWatcher", Watcher(bus))
    bus.export("/org/freedesktop/Notifications", Notifications())
    await bus.request_name("org.kde.StatusNotifierWatcher")
    await bus.request_name("org.freedesktop.Notifications")
    print("desktop bus services ready", flush=True)
    await asyncio.get_event_loop().create_future()


# ---------------------------------------------------------------- client

def last_item():
    try:
        with open(out_path("tray.jsonl")) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return None
    return lines[-1] if lines else None


async def menu_proxy(bus):
    item = last_item()
    if not item:
        raise SystemExit("no tray item registered")
    intro = await bus.introspect(item["name"], item["path"])
    obj = bus.get_proxy_object(item["name"], item["path"], intro)
    sni = obj.get_interface("org.kde.StatusNotifierItem")
    menu_path = await sni.get_menu()
    intro = await bus.introspect(item["name"], menu_path)
    mobj = bus.get_proxy_object(item["name"], menu_path, intro)
    return sni, mobj.get_interface("com.canonical.dbusmenu")


def flatten(layout):
    """[(id, label, enabled, toggle_state)] of a dbusmenu layout."""
    out = []
    ident, props, children = layout
    if ident != 0:
        label = props.get("label").value if "label" in props else ""
        enabled = props["enabled"].value if "enabled" in props else True
        toggle = props["toggle-state"].value if "toggle-state" in props else None
        kind = props["type"].value if "type" in props else "standard"
        if kind != "separator":
            out.append((ident, label.replace("_", ""), enabled, toggle))
    for child in children:
        out.extend(flatten(child.value))
    return out


TRAY_PICTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "icons", "tray")


def png_argb(path):
    """An 8-bit RGBA, non-interlaced PNG as (width, height, ARGB bytes): what
    a StatusNotifierItem's IconPixmap carries."""
    data = open(path, "rb").read()
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    assert (depth, color, interlace) == (8, 6, 0), f"{path}: not 8-bit RGBA"
    idat, pos = b"", 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw, stride, bpp = zlib.decompress(idat), width * 4, 4
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    rgba = b"".join(rows)
    argb = bytearray(len(rgba))
    argb[0::4], argb[1::4], argb[2::4], argb[3::4] = rgba[3::4], rgba[0::4], rgba[1::4], rgba[2::4]
    return width, height, bytes(argb)


def picture_of(pixmaps):
    """Which of icons/tray/*.png the item shows (None if none matches)."""
    known = {}
    for name in os.listdir(TRAY_PICTURES):
        if name.endswith(".png"):
            w, h, argb = png_argb(os.path.join(TRAY_PICTURES, name))
            known[(w, h, hashlib.sha256(argb).hexdigest())] = name[:-4]
    for w, h, data in pixmaps:
        hit = known.get((w, h, hashlib.sha256(bytes(data)).hexdigest()))
        if hit:
            return hit
    return None


async def read_menu():
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    sni, menu = await menu_proxy(bus)
    _, layout = await menu.call_get_layout(0, -1, [])
    icon = await sni.get_icon_name()
    pixmaps = await sni.get_icon_pixmap()
    status = await sni.get_status()
    tooltip = await sni.get_tool_tip()
    items = flatten(layout)
    bus.disconnect()
    return {"icon": icon, "picture": picture_of(pixmaps), "status": status, "tooltip": tooltip[3],
            "items": [{"id": i, "label": l, "enabled": e, "checked": t} for i, l, e, t in items]}


async def activate():
    """A left click on the tray icon, as a panel delivers it."""
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    sni, _ = await menu_proxy(bus)
    await sni.call_activate(0, 0)
    bus.disconnect()


async def click(label):
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    _, menu = await menu_proxy(bus)
    _, layout = await menu.call_get_layout(0, -1, [])
    for ident, text, enabled, _ in flatten(layout):
        if text == label:
            await menu.call_event(ident, "clicked", Variant("i", 0), int(time.time()))
            bus.disconnect()
            return
    raise SystemExit(f"no menu item {label!r} in {[t for _, t, _, _ in flatten(layout)]}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve")
    sub.add_parser("menu")
    c = sub.add_parser("click")
    c.add_argument("label")
    sub.add_parser("activate")
    w = sub.add_parser("wait-item")
    w.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    if a.cmd == "serve":
        asyncio.run(serve())
    elif a.cmd == "menu":
        print(json.dumps(asyncio.run(read_menu())))
    elif a.cmd == "click":
        asyncio.run(click(a.label))
    elif a.cmd == "activate":
        asyncio.run(activate())
    elif a.cmd == "wait-item":
        end = time.time() + a.timeout
        while time.time() < end:
            if last_item():
                print(json.dumps(last_item()))
                return
            time.sleep(0.05)
        sys.exit("no tray item registered in time")


if __name__ == "__main__":
    main()
