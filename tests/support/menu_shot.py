#!/usr/bin/python3
"""Screenshot of a tray item's menu as a panel shows it: libdbusmenu-gtk3 (the library GTK
panels use for StatusNotifierItem menus) builds a real GtkMenu from the item's live
com.canonical.dbusmenu, which is popped up under Xvfb and captured with ImageMagick.

  menu_shot.py SERVICE OUT.png        (DISPLAY and DBUS_SESSION_BUS_ADDRESS from the environment)
"""
import subprocess
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("DbusmenuGtk3", "0.4")
gi.require_version("GdkX11", "3.0")
from gi.repository import DbusmenuGtk3, GdkX11, GLib, Gtk  # noqa: E402,F401

service, out = sys.argv[1], sys.argv[2]
menu = DbusmenuGtk3.Menu.new(service, "/MenuBar")
anchor = Gtk.Window(type=Gtk.WindowType.POPUP)
anchor.set_default_size(1, 1)
anchor.move(40, 30)
anchor.show_all()
result = {"ok": False}


def popup():
    menu.popup(None, None, lambda m, x, y, d: (40, 30, True), None, 0, Gtk.get_current_event_time())
    GLib.timeout_add(800, shoot)
    return False


def shoot():
    top = menu.get_toplevel().get_window()
    if top is not None:
        xid = top.get_xid()
        subprocess.run(["import", "-window", str(xid), out], check=False)
        result["ok"] = True
    Gtk.main_quit()
    return False


GLib.timeout_add(1500, popup)  # let the layout arrive over D-Bus
GLib.timeout_add(15000, Gtk.main_quit)
Gtk.main()
sys.exit(0 if result["ok"] else 1)
