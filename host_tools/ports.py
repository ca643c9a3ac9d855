"""Which port to talk to: --port, else $ITBPUMP_PORT, else an attached Pico, else an error.

A programmer never falls back to a simulated pump by itself: the virtual Pico is used only when
asked for by name ("sim"), and only when it is already running (`itbpump sim start`)."""

from __future__ import annotations

import os

from serial.tools import list_ports

from host_tools.errors import NoDevice

PICO_VID = 0x2E8A  # Raspberry Pi


def attached_picos() -> list[str]:
    return sorted(p.device for p in list_ports.comports() if p.vid == PICO_VID)


NO_PUMP = ("no pump found: no --port, no $ITBPUMP_PORT and no Pico attached (USB VID 0x2E8A). "
           "Connect the pump's Pico, or give --port DEVICE; for the virtual Pico (a simulated pump): "
           "itbpump sim start, then itbpump --port sim COMMAND")


def resolve(port: str | None) -> str | None:
    """Return a device path, or 'sim', or None when none is given and no Pico is attached."""
    chosen = port or os.environ.get("ITBPUMP_PORT")
    if chosen:
        return chosen
    picos = attached_picos()
    if len(picos) > 1:
        raise NoDevice(f"{len(picos)} Picos are attached ({', '.join(picos)}): choose one with --port")
    if picos:
        return picos[0]
    return None
