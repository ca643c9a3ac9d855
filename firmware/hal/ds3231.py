"""The pump's battery-backed wall clock on a Pico: a DS3231 on I2C0 (GP20 SDA, GP21 SCL, address
0x68; docs/hardware.md), which keeps counting while the Pico is off. Seconds since 2000-01-01 UTC
(the device epoch) are computed with small ints only: no time.mktime, whose 1970 epoch gives long
ints on the rp2 port."""

from micropython import const

ADDRESS = const(0x68)
_DAYS_0000_TO_2000 = const(730425)  # from 0000-03-01 (the algorithm's origin) to 2000-01-01


def days(y: int, m: int, d: int) -> int:
    """Days from 2000-01-01 to y-m-d (Gregorian calendar)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - _DAYS_0000_TO_2000


def civil(n: int) -> "tuple[int, int, int]":
    """(year, month, day) of day n after 2000-01-01: the inverse of days()."""
    z = n + _DAYS_0000_TO_2000
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return era * 400 + yoe + (1 if m <= 2 else 0), m, d


def _bcd(v: int) -> int:
    return (v // 10) << 4 | v % 10


def _dec(b: int) -> int:
    return (b >> 4) * 10 + (b & 0x0F)


class DS3231:
    """Registers 0x00-0x06: BCD seconds, minutes, hours (24 h), weekday, date, month, year."""

    def __init__(self, i2c) -> None:
        self._i2c = i2c
        self._regs = bytearray(7)

    def seconds(self) -> int:
        """Seconds since 2000-01-01; OSError when no clock answers."""
        r = self._regs
        self._i2c.readfrom_mem_into(ADDRESS, 0, r)
        n = days(2000 + _dec(r[6]), _dec(r[5] & 0x1F), _dec(r[4]))
        return ((n * 24 + _dec(r[2] & 0x3F)) * 60 + _dec(r[1])) * 60 + _dec(r[0] & 0x7F)

    def set(self, seconds: int) -> None:
        n, s = divmod(seconds, 86400)
        y, m, d = civil(n)
        r = self._regs
        r[0] = _bcd(s % 60)
        r[1] = _bcd(s // 60 % 60)
        r[2] = _bcd(s // 3600)
        r[3] = (n + 5) % 7 + 1  # 1 = Monday; 2000-01-01 was a Saturday
        r[4] = _bcd(d)
        r[5] = _bcd(m)
        r[6] = _bcd(y - 2000)
        self._i2c.writeto_mem(ADDRESS, 0, r)
