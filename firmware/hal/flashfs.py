"""File access for the HALs' flash API: LittleFS on a Pico, the state folder on the virtual Pico.

Shared by hal/rp2.py and hal/sim.py (and the CPython test HAL): only the
HALs call it; firmware logic goes through hal.flash_*.
"""


def read(name):
    try:
        with open(name, "rb") as f:
            return f.read()
    except OSError:
        return None


def readinto(name, offset, buf):
    """Read into buf from offset; bytes read (0 when missing): no whole-file copies."""
    try:
        with open(name, "rb") as f:
            f.seek(offset)
            return f.readinto(buf) or 0
    except OSError:
        return 0


def write(name, data, offset=-1):
    """offset -1: the file becomes data; else data goes at offset (created if missing)."""
    if offset < 0:
        with open(name, "wb") as f:
            f.write(data)
        return
    try:
        f = open(name, "r+b")
    except OSError:
        f = open(name, "w+b")
    try:
        f.seek(offset)
        f.write(data)
    finally:
        f.close()
