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
        # after a request, whose sync() served what was due, service() again only for what the
        # request changed (dates); anything that fell due meanwhile is the next deadline, and
        # wait() returns at once for it (~0.2 ms less a request on a Pico). Frames that ran no
        # request (retries, refusals) never skip it: a flood of them cannot hold back a stroke.
        if not dev.poll_link() or dev.alarms.dates[2]:
            dev.service()
