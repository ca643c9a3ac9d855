"""Wiring up the virtual Pico at power-on: read boot.json, restore the RTC and chip id,
open the link and rig channel. Loaded once by hal/sim.py's constructor and dropped after."""

import sys
import os
import time
import select
import json
from hal import RESET_POWER

_POLLIN = 1


def setup(hal):
    hw = os.getenv("ITBPUMP_SIM_HW")
    if not hw:
        raise RuntimeError("ITBPUMP_SIM_HW is not set: start the virtual Pico with 'itbpump sim start'")
    hal._hw = hw
    with open(hw + "/boot.json") as f:
        cfg = json.load(f)
    hal._manual = cfg["clock"] == "manual"
    hal._vnow = cfg["vnow_ms"]  # virtual ms since the virtual Pico was created
    hal._boot_v = hal._vnow
    hal._grant = hal._vnow
    hal._advancing = False
    hal._real0 = time.ticks_ms()
    hal._reset = cfg.get("reset_cause", RESET_POWER)
    hal.capacity_ml = cfg.get("reservoir_ml", 20)
    hal._rtc_path = hw + "/rtc.json"
    try:
        with open(hal._rtc_path) as f:
            r = json.load(f)
        hal._rtc_at, hal._rtc_v = r["rtc"], r["at_v"]
    except OSError:
        hal._rtc_at, hal._rtc_v = cfg["rtc_default"], 0  # the factory RTC value, set at virtual time 0
    hal._uid = _load_uid(hw)
    os.chdir(cfg["flash_dir"])
    hal._rig_in = open("/dev/fd/%d" % cfg["rig_in_fd"], "rb")
    hal._rig_out = open("/dev/fd/%d" % cfg["rig_out_fd"], "wb")
    hal._link_in = sys.stdin.buffer
    hal._link_out = sys.stdout.buffer
    hal._link_poll = select.poll()
    hal._link_poll.register(hal._link_in, _POLLIN)
    hal._rig_poll = select.poll()
    hal._rig_poll.register(hal._rig_in, _POLLIN)
    hal._all_poll = select.poll()
    hal._all_poll.register(hal._link_in, _POLLIN)
    hal._all_poll.register(hal._rig_in, _POLLIN)
    hal._one = bytearray(1)
    # plant model: motor + rotor feedback, battery, buzzer, LED
    hal.motor_on = False
    hal.strokes = 0
    hal._rotor = 0
    stall = cfg.get("stall", 0)  # a stuck motor is physical: it outlasts the power cut
    hal.stalled = stall == 1
    hal.stall_cycle_ms = stall * 60000 if stall > 1 else 0
    hal.battery = cfg.get("battery", 3000)
    hal.tone = 0
    hal.led_on = False
    hal.flash_writes = 0
    hal._cut_write = 0  # rig fault: power fails during this flash write (0: never)
    hal._wdt_ms = 0
    hal._wdt_fed = hal._vnow


def _load_uid(hw):
    try:
        with open(hw + "/uid", "rb") as f:
            return f.read()
    except OSError:
        uid = os.urandom(8)
        with open(hw + "/uid", "wb") as f:
            f.write(uid)
        return uid
