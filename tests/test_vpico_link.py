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


def test_firmware_heap_after_boot_is_small(vpico_port):
    with PumpClient(vpico_port) as c:
        d = c.diag()
    # the whole firmware must fit comfortably in a 64 KB heap (developers' guide)
    assert d["mem_alloc"] < 48 * 1024, d
