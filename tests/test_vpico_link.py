"""The firmware on the real MicroPython VM, over a real pty with pyserial: the link survives abuse."""

from __future__ import annotations

import json
import os
import time

import serial

from host_tools import framing
from host_tools.client import PumpClient


def read_frames(ser: serial.Serial, count: int, timeout: float = 3.0) -> list[framing.Frame]:
    buf = bytearray()
    frames: list[framing.Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        buf += ser.read(max(1, ser.in_waiting))
        while 0 in buf:
            end = buf.index(0)
            raw = bytes(buf[:end])
            del buf[:end + 1]
            if raw:
                frames.append(framing.decode(raw))
    return frames


def request(cmd: str, req_id: int, **args) -> bytes:
    return framing.encode(framing.REQUEST, req_id, json.dumps({"cmd": cmd, "args": args}).encode())


def test_status_over_the_pty(vpico_port):
    with PumpClient(vpico_port) as c:
        assert c.identity["board"] == "virtual-pico"
        assert c.identity["serial"].startswith("ITB-")
        s = c.status()
        assert s["state"] == "stopped" and s["reservoir_capacity_nl"] == 20_000_000


def test_abuse_gets_error_frames_and_never_wedges_the_firmware(vpico_port):
    ser = serial.Serial(vpico_port, 115200, timeout=0.05)
    good = bytearray(request("status", 5))
    bad_crc = bytearray(good)
    bad_crc[6] ^= 0x01
    cases = [
        (os.urandom(200).replace(b"\x00", b"\x01") + b"\x00", {"bad_crc", "bad_frame"}),
        (bytes(good[:9]) + b"\x00", {"bad_crc", "bad_frame"}),  # truncated
        (bytes(bad_crc), {"bad_crc", "bad_frame"}),
        (b"\x01" * 3000 + b"\x00", {"too_long"}),
        (request("self-destruct", 6), {"unknown_command"}),
        (framing.encode(framing.REQUEST, 7, b"{nope"), {"bad_request"}),
        (framing.encode(framing.REQUEST, 8, b'{"cmd":"status"}', version=9), {"unsupported_version"}),
    ]
    for wire, expected in cases:
        ser.write(wire)
        frames = read_frames(ser, 1)
        assert frames, f"no answer to {wire[:20]!r}"
        assert frames[0].kind == framing.ERROR
        assert json.loads(frames[0].body)["error"] in expected
    ser.write(bytes(good))
    (ok,) = read_frames(ser, 1)
    assert ok.kind == framing.RESPONSE and ok.req_id == 5
    assert json.loads(ok.body)["state"] == "stopped"
    ser.close()


def test_garbage_without_delimiter_is_cut_off_by_the_next_frame(vpico_port):
    ser = serial.Serial(vpico_port, 115200, timeout=0.05)
    ser.write(b"\x17\x42garbage-with-no-end")
    ser.write(request("status", 77))  # starts with 0x00: ends the garbage as a damaged frame
    frames = read_frames(ser, 2)
    assert [f.kind for f in frames] == [framing.ERROR, framing.RESPONSE]
    assert frames[1].req_id == 77
    ser.close()


def test_resent_request_is_answered_identically(vpico_port):
    ser = serial.Serial(vpico_port, 115200, timeout=0.05)
    wire = request("hello", 900)
    ser.write(wire)
    (first,) = read_frames(ser, 1)
    ser.write(wire)
    (second,) = read_frames(ser, 1)
    assert first == second and first.kind == framing.RESPONSE
    ser.close()


def test_client_recovers_from_noise_by_resending(vpico_port):
    with PumpClient(vpico_port, timeout=1.0) as c:
        c._ser.write(b"\x55" * 50)  # a burst of line noise before the next request
        assert c.status()["state"] == "stopped"


def test_the_heap_does_not_grow_with_the_state_folder_s_path(tmp_path):
    """MicroPython keeps every imported module's file name (__file__) as an interned string for
    good. The virtual Pico imports its modules by a relative name ("../build/NAME.mpy"), as a Pico
    does ("NAME.mpy"), so a long state folder (pytest-xdist's, a user's) costs no heap per module:
    with absolute names, 130 more characters cost 3.9 KB after boot and the 88K guards failed."""
    from hil.vpico.control import SimControl
    from hil.vpico.layout import BUDGET_HEAP

    heaps = []
    for root in (tmp_path / "s", tmp_path / ("x" * 150) / "s"):
        ctl = SimControl(root)
        port = ctl.start(clock="manual", fresh=True, heap=BUDGET_HEAP)["port"]
        try:
            with PumpClient(port) as c:
                heaps.append(c.diag()["mem_alloc"])
        finally:
            ctl.stop()
    # 150 characters more in the HAL's two paths (hal/sim_boot.py) and GC noise; not ~40 modules' worth
    assert abs(heaps[1] - heaps[0]) < 1024, heaps


def test_firmware_runs_therapy_in_a_small_heap(tmp_path):
    """Regression guard on the memory budget (docs/architecture.md, "Memory").

    64 KB for the firmware plus 8 KB for the virtual board's HAL (hal/sim.py: plant
    model, rig channel, virtual clock; measured 8.8 KB), which on a Pico is silicon,
    not heap: -X heapsize=72K on the 64-bit unix VM. Boot, fill, program, a day
    of delivery, never reset for lack of memory.
    """
    from hil.vpico.control import SimControl

    ctl = SimControl(tmp_path / "small")
    port = ctl.start(clock="manual", fresh=True, heap="88K")["port"]
    try:
        with PumpClient(port) as c:
            c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
            c.program(mode="continuous", dose_mcg=500, override="first program on a new pump")
        ctl.advance(86_400_000)
        with PumpClient(port) as c:
            assert c.status()["therapy"]["strokes"] == 4000
            assert c.diag()["mem_free"] > 4 * 1024  # varies a few KB: the GC scans the C stack conservatively
        assert ctl.info()["boots"] == 1  # never ran out of memory and reset
    finally:
        ctl.stop()
