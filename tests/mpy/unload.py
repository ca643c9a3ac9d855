"""Runs on the MicroPython VM: a module loaded for one call and dropped is really freed.

An import binds a submodule on its package as an attribute. therapy (the engine's package) is
resident, so therapy.schedule, loaded by a call and only popped from sys.modules, would stay in
the heap through the package; core.device.drop takes it off the package too.
argv: the firmware build. Prints "OK <bytes while loaded> <kept after drop> <kept after a pop alone>".
"""

import gc
import sys

sys.path.insert(0, sys.argv[1])
from core.device import load, drop  # noqa: E402
import therapy.engine  # noqa: E402,F401 - the resident package, as the device keeps it

import therapy  # noqa: E402


def cycle(forget):
    before = list(sys.modules)
    load("therapy.schedule")
    gc.collect()
    loaded = gc.mem_alloc()
    for name in list(sys.modules):
        if name not in before:
            forget(name)
    gc.collect()
    return loaded, gc.mem_alloc()


runs = [cycle(drop) for _ in range(4)]  # the first load interns the module's names for good (qstrs)
assert not hasattr(therapy, "schedule"), "still bound on the package"
loaded, base = runs[1]
kept_by_drop = max(r[1] for r in runs[1:]) - base  # the GC scans the stack conservatively: a block or two
runs = [cycle(lambda name: sys.modules.pop(name)) for _ in range(2)]  # the naive way: sys.modules only
assert hasattr(therapy, "schedule")
print("OK", loaded - base, kept_by_drop, runs[1][1] - base)
