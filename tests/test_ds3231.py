"""The rp2 HAL's device-epoch date arithmetic and DS3231 register codec (firmware/hal/ds3231.py),
under CPython against the standard library's calendar; the emulated DS3231 on I2C is exercised
by tests/test_rp2040.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, strategies as st

from hal import ds3231

EPOCH = datetime(2000, 1, 1)


@given(st.integers(min_value=0, max_value=365 * 34))
def test_days_and_civil_agree_with_the_calendar(n):
    d = date(2000, 1, 1) + timedelta(days=n)
    assert ds3231.days(d.year, d.month, d.day) == n
    assert ds3231.civil(n) == (d.year, d.month, d.day)


class Registers:
    """The DS3231's seven time registers as an I2C bus sees them."""

    def __init__(self):
        self.r = bytearray(7)

    def readfrom_mem_into(self, addr, reg, buf):
        assert addr == ds3231.ADDRESS and reg == 0
        buf[:] = self.r[:len(buf)]

    def writeto_mem(self, addr, reg, data):
        assert addr == ds3231.ADDRESS and reg == 0
        self.r[:len(data)] = data


@given(st.integers(min_value=0, max_value=2**30 - 1))
def test_a_time_written_reads_back_as_bcd_registers(seconds):
    bus = Registers()
    clock = ds3231.DS3231(bus)
    clock.set(seconds)
    assert clock.seconds() == seconds
    t = EPOCH + timedelta(seconds=seconds)
    assert bus.r[0] == (t.second // 10) << 4 | t.second % 10
    assert bus.r[6] == ((t.year - 2000) // 10) << 4 | (t.year - 2000) % 10
    assert bus.r[3] == t.isoweekday()  # 1 = Monday
