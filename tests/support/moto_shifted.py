"""moto in server mode with its clock shifted: the seconds in the file named by
MOTO_CLOCK_OFFSET_FILE (re-read at every call) are added to moto's `utcnow`, so STS issues
credentials whose Expiration follows a machine that slept. Arguments are moto_server's."""

import datetime
import os
import sys

import moto.core.utils as utils

offset_file = os.environ["MOTO_CLOCK_OFFSET_FILE"]
real_utcnow = utils.utcnow


def shifted_utcnow():
    try:
        with open(offset_file) as f:
            offset = float(f.read().strip() or 0)
    except FileNotFoundError:
        offset = 0
    return real_utcnow() + datetime.timedelta(seconds=offset)


utils.utcnow = shifted_utcnow
import moto.sts.models  # noqa: E402  (imports utcnow by name)

moto.sts.models.utcnow = shifted_utcnow

from moto.server import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
