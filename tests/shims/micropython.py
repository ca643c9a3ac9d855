"""CPython stand-in for MicroPython's `micropython` module, for firmware unit tests only."""


def const(x):
    return x


def heap_lock():
    return 0


def heap_unlock():
    return 0


def kbd_intr(_chr):
    return None
