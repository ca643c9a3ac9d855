"""The main loop: feed the watchdog, sleep until the next event, serve it."""

from core.device import Device

WATCHDOG_MS = 8000


def run(hal):
    dev = Device(hal)
    dev.boot()
    hal.wdt_start(WATCHDOG_MS)
    while True:
        hal.wdt_feed()
        hal.wait(dev.next_deadline())
        dev.poll_link()
        dev.service()
