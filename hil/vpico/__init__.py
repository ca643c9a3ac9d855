"""The virtual Pico: the firmware on the MicroPython unix port behind a pseudo-terminal."""
