"""itbpump flash (spec §7, §9): the mpy-cross build a Pico gets, key provisioning at flash time,
and the refusals. The board is tests/mpremote_standin.py (no Pico on CI; the unix port has no
raw REPL for mpremote): a folder standing for its flash, driven through the same subprocess
calls mpremote gets. The build and the host key file are real."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from host_tools import cli, firmware_build, flash
from host_tools.keys import KeyStore, ROLES

STANDIN = Path(__file__).with_name("mpremote_standin.py")
UID = "E6614103E7452D2F"


@pytest.fixture
def board(tmp_path, monkeypatch):
    """A Pico in its REPL with MicroPython and nothing else yet; a fresh host key file."""
    d = tmp_path / "board"
    d.mkdir()
    (d / ".uid").write_text(UID)
    monkeypatch.setenv("ITBPUMP_MPREMOTE", f"{sys.executable} {STANDIN} {d}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("ITBPUMP_PORT", raising=False)
    return d


def calls(board: Path) -> list[list[str]]:
    return [json.loads(line) for line in (board / ".calls.jsonl").read_text().splitlines()]


def run(*argv: str) -> int:
    return cli.main(["--port", "/dev/ttyACM7", *argv])


def deployed(board: Path) -> set[str]:
    return {str(p.relative_to(board)) for p in board.rglob("*") if p.is_file() and not p.name.startswith(".")}


def test_a_new_board_gets_the_compiled_firmware_and_keys_the_host_holds(board, capsys):
    (board / ".jumper").touch()  # so no check after the reset: nothing answers on /dev/ttyACM7
    assert run("flash") == 0
    out = capsys.readouterr().out
    serial = "ITB-" + UID[-8:]
    assert out.startswith(f"Flashed {serial} on /dev/ttyACM7") and "new role keys" in out, out
    files = deployed(board)
    firmware = Path(cli.__file__).parents[1] / "firmware"
    # a package's __init__ that only says what the package holds is not flashed (firmware_build)
    modules = {str(p.relative_to(firmware).with_suffix(".mpy")) for p in firmware.rglob("*.py")
               if p.name != "main.py" and not p.name.startswith("sim")
               and not (p.name == "__init__.py" and firmware_build.only_a_docstring(p.read_text()))}
    assert {"core/device.mpy", "requests/program.mpy", "hal/__init__.mpy"} <= modules
    modules |= {p.with_suffix(".mpy").name for p in (firmware.parent / "native").glob("*.py")}  # for its chip
    assert files == modules | {"main.py", "keys.json"}, files ^ (modules | {"main.py", "keys.json"})
    assert (board / "main.py").read_text() == (firmware / "main.py").read_text()
    assert (board / "core" / "device.mpy").read_bytes()[:1] == b"M"  # an .mpy file, compiled by mpy-cross
    board_keys = json.loads((board / "keys.json").read_text())
    assert sorted(board_keys) == sorted(ROLES)
    store = KeyStore()
    assert json.loads(store.path.read_text())[serial] == board_keys
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [c[:2] for c in calls(board)] == [["exec", flash.PROBE], ["fs", "cp"], ["fs", "cp"], ["reset"]]


def test_reflash_keeps_the_keys_removes_stale_code_and_keeps_data(board, capsys):
    (board / ".jumper").touch()
    assert run("flash") == 0
    keys = (board / "keys.json").read_text()
    (board / "ident.json").write_text(json.dumps({"serial": "ITB-0000CAFE", "board": "pico"}))
    (board / "old_module.py").write_text("x = 1")  # would shadow an .mpy of the same name
    (board / "device.mpy").write_bytes(b"M")  # the flat layout before the packages: it would outlive its move
    (board / "hal" / "old.mpy").write_bytes(b"M")
    (board / "state.a").write_bytes(b"therapy")
    KeyStore().add("ITB-0000CAFE", json.loads(keys))  # the serial is ident.json's once provisioned
    capsys.readouterr()
    assert run("flash") == 0
    out = capsys.readouterr().out
    assert "Flashed ITB-0000CAFE" in out and "kept" in out and "removed   device.mpy, hal/old.mpy, old_module.py" in out, out
    assert (board / "keys.json").read_text() == keys
    assert not (board / "old_module.py").exists() and not (board / "hal" / "old.mpy").exists()
    assert not (board / "device.mpy").exists() and (board / "core" / "device.mpy").exists()
    assert (board / "state.a").read_bytes() == b"therapy" and (board / "ident.json").exists()


def test_a_board_whose_keys_the_host_lacks_is_refused_unless_new_keys(board, capsys):
    (board / ".jumper").touch()
    (board / "keys.json").write_text(json.dumps({r: "11" * 32 for r in ROLES}))
    assert run("flash") == 1
    err = capsys.readouterr().err
    assert "already has keys this host does not hold" in err and "--new-keys" in err, err
    assert deployed(board) == {"keys.json"} and [c[0] for c in calls(board)] == ["exec"]  # nothing written
    assert not KeyStore().path.exists()
    assert run("flash", "--new-keys") == 0
    new = json.loads((board / "keys.json").read_text())
    assert new != {r: "11" * 32 for r in ROLES} and KeyStore().roles("ITB-" + UID[-8:]) == list(ROLES)


def test_a_board_running_the_firmware_is_refused_with_the_jumper_hint(board, capsys):
    (board / ".refuse").touch()
    assert run("flash") == 1
    err = capsys.readouterr().err
    assert "could not enter raw repl" in err and "maintenance jumper (GP22 to GND)" in err, err
    assert "mpremote exec (board probe) failed" in err and "import" not in err, err  # one line, no script
    assert len(err.strip().splitlines()) == 1, err
    assert not KeyStore().path.exists()


def test_without_the_jumper_the_flash_checks_the_firmware_answers(board, capsys, monkeypatch):
    monkeypatch.setattr(flash, "_verify", lambda port, serial, within_s: False)  # nothing on the port
    assert run("flash") == 1
    err = capsys.readouterr().err
    assert "did not answer after the reset" in err and "ITB-" + UID[-8:] in err, err


def test_dry_run_builds_and_plans_but_opens_no_port_and_writes_no_key(board, capsys):
    assert cli.main(["--json", "flash", "--dry-run"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["dry_run"] is True and r["files"] > 30 and r["bytes"] > 20_000, r
    assert not (board / ".calls.jsonl").exists() and not KeyStore().path.exists()


def test_flash_refuses_the_virtual_pico_and_no_port(board, capsys, monkeypatch):
    assert cli.main(["--port", "sim", "flash"]) == 1
    assert "virtual Pico builds the firmware itself" in capsys.readouterr().err
    assert cli.main(["--port", "sim", "flash", "--dry-run"]) == 0  # a plan needs no board
    assert capsys.readouterr().out.startswith("Dry run: nothing written")
    monkeypatch.setattr(cli.ports, "attached_picos", lambda: [])
    assert cli.main(["flash"]) == 1
    assert "no Pico attached (USB VID 0x2E8A)" in capsys.readouterr().err
    monkeypatch.setattr(cli.ports, "attached_picos", lambda: ["/dev/ttyACM0", "/dev/ttyACM1"])
    assert cli.main(["flash"]) == 1
    assert "2 Picos are attached" in capsys.readouterr().err
