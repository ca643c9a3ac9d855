"""Hardware-in-the-loop rig: the virtual Pico, rig back ends, scenarios and runner."""
