#!/usr/bin/env python3
"""A minimal StatusNotifier host for tests, on the session bus in DBUS_SESSION_BUS_ADDRESS.

  sni_host.py watch FILE        own org.kde.StatusNotifierWatcher; append each registered item
                                to FILE as a JSON line {"service", "path", "t"}; run until killed
  sni_host.py menu SERVICE      print the item's properties and its dbusmenu layout as JSON
  sni_host.py click SERVICE LABEL
                                send "clicked" to the menu item whose label starts with LABEL
"""
import asyncio
import json
import sys
import time

from dbus_next import Variant, BusType
from dbus_next.errors import DBusError

GONE = {"org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner", "org.freedesktop.DBus.Error.Disconnected"}
from dbus_next.aio import MessageBus
from dbus_next.service import ServiceInterface, method, signal, dbus_property, PropertyAccess


class Watcher(ServiceInterface):
    def __init__(self, bus, out):
        super().__init__("org.kde.StatusNotifierWatcher")
        self.bus, self.out, self.items = bus, out, []

    @method()
    def RegisterStatusNotifierItem(self, service: "s"):
        # ksni passes its bus name; libappindicator passes an object path
        sender = service
        path = "/StatusNotifierItem"
        if service.startswith("/"):
            path, sender = service, "?"
        self.items.append(f"{sender}{path}")
        with open(self.out, "a") as f:
            f.write(json.dumps({"service": sender, "path": path, "t": time.time()}) + "\n")
        self.StatusNotifierItemRegistered(f"{sender}{path}")

    @method()
    def RegisterStatusNotifierHost(self, service: "s"):
        pass

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":
        return self.items

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":
        return 0

    @signal()
    def StatusNotifierItemRegistered(self, service) -> "s":
        return service

    @signal()
    def StatusNotifierHostRegistered(self):
        return None


async def watch(out):
    bus = await MessageBus().connect()
    bus.export("/StatusNotifierWatcher", Watcher(bus, out))
    await bus.request_name("org.kde.StatusNotifierWatcher")
    await bus.request_name("org.kde.StatusNotifierHost-test")
    print("ready", flush=True)
    await bus.wait_for_disconnect()


def plain(v):
    if isinstance(v, Variant):
        return plain(v.value)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return len(v)
    return v


def tree(node):
    nid, props, children = node
    p = plain(props)
    return {"id": nid, "label": p.get("label", ""), "enabled": p.get("enabled", True),
            "type": p.get("type", "standard"), "toggle_state": p.get("toggle-state"),
            "children": [tree(plain_child(c)) for c in children]}


def plain_child(c):
    return c.value if isinstance(c, Variant) else c


async def proxy(bus, service, path, iface):
    intro = await bus.introspect(service, path)
    return bus.get_proxy_object(service, path, intro).get_interface(iface)


async def read(service):
    bus = await MessageBus().connect()
    item = await proxy(bus, service, "/StatusNotifierItem", "org.kde.StatusNotifierItem")
    props = {}
    for name in ["Id", "Title", "Status", "ToolTip", "IconPixmap", "Menu", "ItemIsMenu"]:
        try:
            props[name] = plain(await getattr(item, "get_" + "".join(
                "_" + c.lower() if c.isupper() else c for c in name).lstrip("_"))())
        except Exception as e:  # noqa: BLE001
            props[name] = f"error: {e}"
    menu_path = props.get("Menu") or "/MenuBar"
    menu = await proxy(bus, service, menu_path, "com.canonical.dbusmenu")
    rev, layout = await menu.call_get_layout(0, -1, [])
    return bus, menu, {"item": props, "revision": rev, "layout": tree(layout)}


def find(node, label):
    if node["label"].replace("_", "").startswith(label):
        return node
    for c in node["children"]:
        f = find(c, label)
        if f:
            return f
    return None


async def main():
    cmd = sys.argv[1]
    if cmd == "watch":
        await watch(sys.argv[2])
    elif cmd == "menu":
        _, _, doc = await read(sys.argv[2])
        print(json.dumps(doc))
    elif cmd == "click":
        bus, menu, doc = await read(sys.argv[2])
        node = find(doc["layout"], sys.argv[3])
        if node is None:
            print(f"no menu item {sys.argv[3]!r}", file=sys.stderr)
            sys.exit(3)
        try:
            await menu.call_about_to_show(0)
        except Exception:  # noqa: BLE001
            pass
        try:
            await menu.call_event(node["id"], "clicked", Variant("i", 0), int(time.time()))
        except DBusError as e:
            # "Quit" may end the item before its reply arrives; anything else is a failure
            if e.type not in GONE:
                raise
        print(json.dumps(node))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


asyncio.run(main())
