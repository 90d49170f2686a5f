#!/usr/bin/env python3
"""A minimal org.freedesktop.Notifications server for tests (Desktop Notifications
Specification 1.2): owns the name on the session bus given by DBUS_SESSION_BUS_ADDRESS and
appends every Notify call as one JSON line to the file given as argv[1]."""
import asyncio
import json
import sys

from dbus_next.aio import MessageBus
from dbus_next.service import ServiceInterface, method, signal


class Notifications(ServiceInterface):
    def __init__(self, log_path):
        super().__init__("org.freedesktop.Notifications")
        self.log_path = log_path
        self.next_id = 1

    @method()
    def GetCapabilities(self) -> "as":
        return ["body", "actions"]

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["astran-test-notifyd", "astran", "1.0", "1.2"]

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s",
               body: "s", actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":
        nid = replaces_id or self.next_id
        self.next_id += 1
        urgency = hints.get("urgency")
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": nid, "app_name": app_name, "summary": summary, "body": body,
                                "actions": actions,
                                "urgency": urgency.value if urgency is not None else None}) + "\n")
        return nid

    @method()
    def Invoke(self, nid: "u", key: "s"):
        """Test hook: act as if the user clicked action `key` of notification `nid`."""
        self.ActionInvoked(nid, key)

    @method()
    def CloseNotification(self, nid: "u"):
        self.NotificationClosed(nid, 3)

    @signal()
    def NotificationClosed(self, nid, reason) -> "uu":
        return [nid, reason]

    @signal()
    def ActionInvoked(self, nid, key) -> "us":
        return [nid, key]


async def main():
    bus = await MessageBus().connect()
    bus.export("/org/freedesktop/Notifications", Notifications(sys.argv[1]))
    await bus.request_name("org.freedesktop.Notifications")
    print("ready", flush=True)
    try:
        await bus.wait_for_disconnect()
    except (EOFError, OSError):
        # the bus went first (the test binary ends its dbus-daemon and this together): that
        # is the end of the session, not an error
        pass


asyncio.run(main())
