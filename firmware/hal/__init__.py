"""Hardware abstraction layer: the only door between firmware logic and a board.

Each back end module (``rp2`` for a real Pico, ``sim`` for the virtual Pico)
exposes a class ``Hal`` with exactly this interface; firmware logic calls
nothing else that touches hardware, time or the link.

Time
  ticks_ms() -> int               millisecond counter, wraps at 2**30 like the Pico's
  ticks_add(t, delta) -> int      wrap-aware arithmetic on ticks
  ticks_diff(a, b) -> int         signed a - b, wrap-aware
  rtc_seconds() -> int            wall clock, whole seconds since 2000-01-01 00:00 UTC
  rtc_set(seconds) -> None

Identity and reset
  board: str                      "rp2" or "virtual-pico"
  unique_id() -> bytes            stable per board (flash id / provisioned id)
  reset_cause() -> int            one of RESET_* below
  reset() -> None                 reboot the board now (after a firmware crash)
  capacity_ml: int                reservoir size of this pump model (20 or 40), factory-set

Programmer link (USB CDC on a Pico; a pipe to the pty relay on the virtual Pico)
  link_read(buf: bytearray) -> int   non-blocking: bytes waiting, copied into buf
  link_write(data) -> None
  wait(deadline) -> None          sleep until link input arrives or ticks reach
                                  deadline (None: no deadline); never busy-waits

Flash (the firmware's files; every write goes through here so a rig can cut power mid-write)
  flash_read(name) -> bytes | None        whole file, None when missing
  flash_readinto(name, offset, buf) -> int  part of a file into buf; bytes read (0: missing)
  flash_write(name, data, offset=-1)      offset -1: the file becomes data; else data is
                                          written at offset (the file is created if missing)
  flash_rename(old, new) -> None          atomic on LittleFS: the way to replace a file safely
  flash_writes: int                       writes since boot (for the flash-wear budget)

Watchdog
  wdt_start(timeout_ms) -> None
  wdt_feed() -> None

Pump and peripherals
  motor_enable(on: bool) -> None
  stroke() -> None                one pump stroke (the STEP pulses of one stroke)
  rotor_count() -> int            rotor feedback pulses since boot
  battery_mv() -> int             battery voltage in millivolts
  buzzer(freq_hz) -> None         0 silences
  led(on: bool) -> None
"""

RESET_POWER = 0
RESET_WATCHDOG = 1
RESET_SOFT = 2
