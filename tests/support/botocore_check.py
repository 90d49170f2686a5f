"""Compares a credentials file before and after our edit, as botocore reads it.

One JSON request per line on stdin: {"before": str, "after": str, "profile": str,
"entries": [[key, value], ...], "managed": [key, ...]}. One JSON reply per line:
{"ok": true} or {"ok": false, "why": str}.

The parse is botocore's own (`botocore.configloader.raw_config_parse`, what the AWS CLI uses
for ~/.aws/credentials), on a real file. When botocore refuses the file before the edit (a
duplicate section, a line without a delimiter, ...), the other profiles are compared through
configparser in non-strict mode, which keeps what it could read.
"""

import atexit
import configparser
import os
import shutil
import tempfile

from checker_loop import serve  # beside this script

from botocore.configloader import raw_config_parse
from botocore.exceptions import ConfigParseError

# a RAM-backed folder when there is one: 40,000 small writes per run
folder = tempfile.mkdtemp(
    prefix="botocore-check-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
)
atexit.register(shutil.rmtree, folder, True)
path = os.path.join(folder, "credentials")


def botocore(text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    try:
        return raw_config_parse(path), None
    except ConfigParseError as e:
        return None, str(e)


def lenient(text):
    cp = configparser.RawConfigParser(strict=False)
    try:
        cp.read_string(text)
    except configparser.MissingSectionHeaderError as e:
        return {"<error>": str(e)}
    except configparser.ParsingError:
        pass  # what was readable is in cp
    return {s: dict(cp.items(s)) for s in cp.sections()}


def own_keys(text, profile):
    cp = configparser.RawConfigParser(strict=False)
    try:
        cp.read_string(text)
    except configparser.Error:
        pass
    return set(cp._sections.get(profile, {}))


def others(parsed, profile):
    return {k: v for k, v in parsed.items() if k != profile}


def check(req):
    profile = req["profile"]
    # Read "before" with one more section appended: [DEFAULT]'s values are inherited by every
    # section, so a file whose only section is a [DEFAULT] that botocore cannot expand into a
    # profile is unusable for any profile, ours included; it is judged as a broken file.
    before, before_err = botocore(req["before"] + "\n[__probe__]\n")
    if before is not None:
        before.pop("__probe__", None)
    after, after_err = botocore(req["after"])
    if before is not None:
        if after is None:
            return "the file parsed before the edit and not after: " + after_err
        if others(before, profile) != others(after, profile):
            return "other profiles changed: %r -> %r" % (
                others(before, profile),
                others(after, profile),
            )
        ours = after.get(profile)
    else:
        b, a = lenient(req["before"]), lenient(req["after"])
        if "<error>" in b:
            if after is not None or "<error>" not in a:
                return "a file without a first section header became readable"
            return None
        if others(b, profile) != others(a, profile):
            return "other profiles changed (non-strict read): %r -> %r" % (
                others(b, profile),
                others(a, profile),
            )
        ours = after.get(profile) if after is not None else a.get(profile)
    if ours is None:
        return "our profile is missing after the edit"
    for k, v in req["entries"]:
        if ours.get(k) != v:
            return "our profile's %s is %r, expected %r" % (k, ours.get(k), v)
    # keys in our section itself ([DEFAULT]'s keys show up in every section; not ours)
    own = own_keys(req["after"], profile)
    written = {k for k, _ in req["entries"]}
    for k in req["managed"]:
        if k not in written and k in own:
            return "stale managed key %s kept" % k
    return None


serve(check)
