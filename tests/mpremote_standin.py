"""A stand-in for `mpremote connect PORT ...` on a Pico in its REPL, for tests/test_flash.py.

No Pico is attached to CI, and the MicroPython unix port has no raw REPL, so mpremote cannot
reach a virtual Pico. This script keeps the board's flash in a folder and does what mpremote's
commands would do to it: `exec` (answers host_tools/flash.py's probe from the folder), `fs rm`,
`fs cp [-r]`, `reset`. Every call is appended to calls.jsonl in the folder.

Usage: ITBPUMP_MPREMOTE="python tests/mpremote_standin.py BOARD_DIR"; the board's chip id is
BOARD_DIR/.uid (hex), the maintenance jumper is set when BOARD_DIR/.jumper exists, and
BOARD_DIR/.refuse makes every call fail as mpremote does on a board running the firmware.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

MARK = "ITBPUMP-PROBE "


def main(argv: list[str]) -> int:
    board, args = Path(argv[0]), argv[1:]
    assert args[0] == "connect", args
    args = args[2:]
    with open(board / ".calls.jsonl", "a") as f:
        f.write(json.dumps(args) + "\n")
    if (board / ".refuse").exists():
        print("mpremote: could not enter raw repl", file=sys.stderr)
        return 1
    if args[0] == "exec":
        assert MARK in args[1], "not the flash probe"
        try:
            ident = json.loads((board / "ident.json").read_text())
        except FileNotFoundError:
            ident = None
        root = sorted(p.name for p in board.iterdir() if not p.name.startswith("."))
        dirs = {d: sorted(p.name for p in (board / d).iterdir()) for d in root if (board / d).is_dir()}
        print(MARK + json.dumps({"uid": (board / ".uid").read_text().strip(), "ident": ident,
                                 "root": root, "dirs": dirs, "jumper": (board / ".jumper").exists()}))
        return 0
    if args[:2] == ["fs", "rm"]:
        for remote in args[2:]:
            (board / remote.lstrip(":")).unlink()
        return 0
    if args[:2] == ["fs", "cp"]:
        rest = [a for a in args[2:] if a != "-r"]
        *sources, dest = rest
        for src in map(Path, sources):
            target = board / dest.lstrip(":") if dest != ":" else board / src.name
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(src, target)
        return 0
    if args == ["reset"]:
        return 0
    print(f"mpremote stand-in: unknown command {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
