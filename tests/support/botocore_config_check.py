"""Checks our edit of ~/.aws/config as botocore reads it (`botocore.configloader.load_config`,
what the AWS CLI and boto3 use: profiles, sso-sessions and `services` with nested values).

One JSON request per line on stdin: {"before", "after", "removed": str, "profile": str,
"region": str or null, "endpoints": {service: url}}. One JSON reply per line: {"ok": true}
or {"ok": false, "why": str}.
"""

import atexit
import os
import shutil
import tempfile

from checker_loop import serve  # beside this script

from botocore.configloader import load_config

folder = tempfile.mkdtemp(
    prefix="botocore-config-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
)
atexit.register(shutil.rmtree, folder, True)
path = os.path.join(folder, "config")


def parse(text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return load_config(path)


OURS = ("s3", "sts", "iam")


def without(cfg, profile):
    """Everything but our keys: the other sections, and the user's own keys in our two."""
    profiles = {k: dict(v) for k, v in cfg["profiles"].items()}
    mine = profiles.pop(profile, {})
    services = {k: v for k, v in cfg["services"].items() if k != profile}
    theirs = {k: v for k, v in mine.items() if k not in ("services", "region")}
    theirs_svc = {k: v for k, v in cfg["services"].get(profile, {}).items() if k not in OURS}
    rest = {"profiles": profiles, "sso": cfg["sso_sessions"], "services": services}
    return rest, (theirs, theirs_svc)


def check(req):
    p = req["profile"]
    before = parse(req["before"])
    after = parse(req["after"])
    rest_b, theirs_b = without(before, p)
    rest_a, theirs_a = without(after, p)
    if rest_b != rest_a:
        return "other sections changed: %r -> %r" % (rest_b, rest_a)
    if theirs_b != theirs_a:
        return "the user's keys in our profile changed: %r -> %r" % (theirs_b, theirs_a)
    ours = after["profiles"].get(p)
    if ours is None or ours.get("services") != p:
        return "our profile does not name our services section: %r" % ours
    if req["region"] is not None and ours.get("region") != req["region"]:
        return "region %r, expected %r" % (ours.get("region"), req["region"])
    want = {s: {"endpoint_url": u} for s, u in req["endpoints"].items()}
    got = {k: v for k, v in after["services"].get(p, {}).items() if k in OURS}
    if got != want:
        return "services %r, expected %r" % (got, want)
    removed = parse(req["removed"])
    rest_r, theirs_r = without(removed, p)
    if rest_r != rest_b:
        return "removing ours changed other sections: %r -> %r" % (rest_b, rest_r)
    if theirs_r != theirs_b:
        return "removing ours took the user's keys: %r -> %r" % (theirs_b, theirs_r)
    left = [k for k in removed["services"].get(p, {}) if k in OURS]
    if left or "services" in removed["profiles"].get(p, {}):
        return "our sections are still there after removal"
    return None


serve(check)
