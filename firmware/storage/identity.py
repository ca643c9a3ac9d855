"""Device identity, provisioned once at first start and kept in flash."""

import json
import os

IDENT_FILE = "ident.json"


def _hex(data):
    return "".join("%02X" % b for b in data)


def load_or_provision(hal):
    """Return (identity dict, first_boot). First boot writes the identity file."""
    try:
        with open(IDENT_FILE) as f:
            return json.load(f), False
    except (OSError, ValueError):
        pass
    ident = {"serial": "ITB-" + _hex(hal.unique_id())[-8:], "board": hal.board}
    tmp = IDENT_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ident, f)
    os.rename(tmp, IDENT_FILE)
    return ident, True
