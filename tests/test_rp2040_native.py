"""The Pico build's hand-written Thumb assembler (native/thumb/link_crc.py, @micropython.asm_thumb)
on the real rp2 MicroPython of an emulated RP2040: no type checker reads assembler and the
virtual Pico (x64) cannot run it, so this is where it is held to the host's CRC-16, for any bytes,
any starting register, and each kind of buffer the link hands it (bytes, bytearray, a memoryview
into a larger buffer, as encode and answer_room do). Every framed answer of the other RP2040
tests goes through it too. The same blank board (no firmware) shows how the rig reports a board
that never answers. Skipped with one line without the RP2040 test equipment."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.rp2040.board import Board, needs_equipment
from host_tools import firmware_build, framing

pytestmark = needs_equipment()

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    """A blank board (MicroPython's REPL) given the Pico build's link_crc.mpy."""
    if firmware_build.mpy_cross() is None:
        pytest.skip("mpy-cross not installed")
    build = tmp_path_factory.mktemp("build") / "fw"
    firmware_build.build(build)  # a Pico's: armv6m
    b = Board(tmp_path_factory.mktemp("rp2040") / "blank").start()
    time.sleep(2)
    run = [MPREMOTE, "connect", b.port]
    subprocess.run([*run, "cp", str(build / "link_crc.mpy"), ":link_crc.mpy"], check=True, capture_output=True,
                   timeout=120)
    yield run, b
    b.stop()


def crc_on_the_board(blank, cases: list[tuple[int, bytes, str]]) -> list[int]:
    run = blank[0]
    lines = ["import link_crc"]
    for start, data, kind in cases:
        if kind == "bytes":
            arg = repr(data)
        elif kind == "bytearray":
            arg = f"bytearray({data!r})"
        else:  # a view into a larger buffer, at an offset
            arg = f"memoryview(bytearray(b'\\xff\\x00\\x01' + {data!r} + b'\\x02'))[3:]"
        lines.append(f"print(link_crc.crc16({start}, {len(data)}, {arg}))")
    out = subprocess.run([*run, "exec", "\n".join(lines)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return [int(w) for w in out.stdout.split()]


def host_crc(start: int, data: bytes) -> int:
    import binascii

    return binascii.crc_hqx(data, start)  # CRC-16/CCITT (poly 0x1021, MSB first) from any register


def test_the_pico_build_takes_the_assembler_crc(tmp_path):
    """The Pico's link_crc.mpy is native/thumb/'s, the virtual Pico's (x64) native/'s viper."""
    tool = firmware_build.mpy_cross()
    if tool is None:
        pytest.skip("mpy-cross not installed")
    root = Path(__file__).resolve().parents[1]
    for arch, source in (("armv6m", root / "native" / "thumb" / "link_crc.py"), ("x64", root / "native" / "link_crc.py")):
        build = tmp_path / arch
        firmware_build.build(build, arch=arch)
        want = tmp_path / f"{arch}.mpy"
        subprocess.run([tool, f"-march={arch}", "-s", "link_crc", "-o", str(want), str(source)], check=True)
        assert (build / "link_crc.mpy").read_bytes() == want.read_bytes(), arch


def test_the_check_value_and_the_host_crc_on_the_rp2040(blank):
    assert crc_on_the_board(blank, [(0xFFFF, b"123456789", "bytes")]) == [0x29B1] == [framing.crc16(b"123456789")]


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=700),
                          st.sampled_from(["bytes", "bytearray", "view"])), min_size=20, max_size=20))
def test_the_assembler_crc_equals_the_host_for_any_bytes_and_register(blank, cases):
    assert crc_on_the_board(blank, cases) == [host_crc(start, data) for start, data, _ in cases]


def test_a_board_that_never_answers_is_reported_with_what_it_was_doing(blank):
    """The rig's wait for a pump to answer (a blank board here: MicroPython's REPL, no firmware)
    gives up naming the board's state, so a hang says whether the chip ran, booted or sent bytes."""
    from hil.rig import RigError
    from hil.rp2040.rig import wait_answer

    with pytest.raises(RigError, match=r"did not answer within 1 s; the board: .*'boots': \d+.*'cycles': \d+"):
        wait_answer(blank[1], within_s=1)
