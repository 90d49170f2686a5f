#!/usr/bin/env python3
"""Click a tray menu item over D-Bus (as a StatusNotifier host does) and time how long it
takes until an X window with the given title is shown.

  sni_click.py SERVICE LABEL TITLE [TIMEOUT_S]

Prints one line: the milliseconds from the dbusmenu "clicked" Event being sent to the
window being visible (xdotool search --onlyvisible, polled every 5 ms). The menu is read
before the clock starts, so only the agent's and the window's own work is timed.
"""
import asyncio
import subprocess
import sys
import time

from dbus_next import Variant
from dbus_next.aio import MessageBus


def find(node, label):
    nid, props, children = node
    lab = props.get("label")
    lab = lab.value if isinstance(lab, Variant) else (lab or "")
    if lab.replace("_", "").startswith(label):
        return nid
    for c in children:
        f = find(c.value if isinstance(c, Variant) else c, label)
        if f is not None:
            return f
    return None


def shown(title):
    return subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{title}$"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


async def main():
    service, label, title = sys.argv[1:4]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
    bus = await MessageBus().connect()
    intro = await bus.introspect(service, "/StatusNotifierItem")
    item = bus.get_proxy_object(service, "/StatusNotifierItem", intro) \
        .get_interface("org.kde.StatusNotifierItem")
    menu_path = await item.get_menu()
    intro = await bus.introspect(service, menu_path)
    menu = bus.get_proxy_object(service, menu_path, intro).get_interface("com.canonical.dbusmenu")
    _, layout = await menu.call_get_layout(0, -1, [])
    nid = find(layout, label)
    if nid is None:
        sys.exit(f"no menu item {label!r}")
    if shown(title):
        sys.exit(f"a window {title!r} is already shown")
    t0 = time.monotonic()
    await menu.call_event(nid, "clicked", Variant("i", 0), int(time.time()))
    while not shown(title):
        if time.monotonic() - t0 > timeout:
            sys.exit(f"no window {title!r} after {timeout} s")
        await asyncio.sleep(0.005)
    print(f"{(time.monotonic() - t0) * 1000:.1f}")


asyncio.run(main())
