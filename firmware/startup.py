"""Boot: self-test, identity, and leaving 'boot' for the state the pump was in.

Loaded once at boot by Device.boot() and dropped after: none of it stays in the heap.
"""

import ident
import link
from hal import RESET_POWER, RESET_WATCHDOG


def run(dev):
    ok = link.crc16(b"123456789", 9) == 0x29B1
    try:
        dev.ident, first = ident.load_or_provision(dev.hal)
    except OSError:
        ok = False
        first = False
    if not ok:
        dev.fsm.fire("self_test_failed")
        dev.alarms.raise_alarm("memory_critical")
        return
    dev.fsm.fire("self_test_ok")
    if not first and dev.hal.reset_cause() in (RESET_POWER, RESET_WATCHDOG):
        # an implanted pump never shuts down on purpose: any later boot is a reset
        dev.alarms.raise_alarm("reset_recovered")
