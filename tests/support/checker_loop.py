"""The loop both botocore checkers run: one JSON request per line on stdin, one JSON reply
per line on stdout, {"ok": true} or {"ok": false, "why": str}; a crash in a check is a
failed case with its reason."""

import json
import sys


def serve(check):
    for line in sys.stdin:
        req = json.loads(line)
        try:
            why = check(req)
        except Exception as e:
            why = "checker error: %r" % e
        sys.stdout.write(json.dumps({"ok": why is None, "why": why}) + "\n")
        sys.stdout.flush()
