"""Reads a credentials file with botocore in a loop until STOP_FILE exists, as the AWS CLI
would while our writers run. Every read must parse, keep the profile `keep` exactly, and
show each of our profiles whole (all four keys). Prints one JSON summary line."""

import json
import os
import sys

from botocore.configloader import raw_config_parse

path, stop_file = sys.argv[1], sys.argv[2]
ours = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "x_security_token_expires")
reads, errors = 0, []
while not os.path.exists(stop_file):
    try:
        cfg = raw_config_parse(path)
        reads += 1
        if cfg.get("keep") != {"aws_access_key_id": "AKIAKEEPME", "region": "eu-west-3"}:
            errors.append("profile keep changed: %r" % cfg.get("keep"))
        for name, keys in cfg.items():
            if name != "keep" and not all(k in keys for k in ours):
                errors.append("torn profile %s: %r" % (name, sorted(keys)))
    except Exception as e:  # any failure to read is a torn or broken file
        errors.append("read failed: %r" % e)
    if len(errors) > 20:
        break
print(json.dumps({"reads": reads, "errors": errors[:20]}), flush=True)
