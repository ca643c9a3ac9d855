"""Which port to talk to: --port, else $ITBPUMP_PORT, else an attached Pico, else the virtual Pico."""

from __future__ import annotations

import os

from serial.tools import list_ports

from host_tools.errors import NoDevice

PICO_VID = 0x2E8A  # Raspberry Pi


def attached_picos() -> list[str]:
    return sorted(p.device for p in list_ports.comports() if p.vid == PICO_VID)


def resolve(port: str | None, fallback: str | None = "sim") -> str | None:
    """Return a device path, or `fallback` when none is given and no Pico is attached ('sim':
    the virtual Pico)."""
    chosen = port or os.environ.get("ITBPUMP_PORT")
    if chosen:
        return chosen
    picos = attached_picos()
    if len(picos) > 1:
        raise NoDevice(f"{len(picos)} Picos are attached ({', '.join(picos)}): choose one with --port")
    if picos:
        return picos[0]
    return fallback
