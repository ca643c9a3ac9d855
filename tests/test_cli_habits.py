"""The programmer's habits as a user meets them: no silent virtual pump (issue 11 item 5), --json
anywhere, JSON usage errors, a closed pipe, --timeout checked (item 6)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools import cli

ITBPUMP = str(Path(sys.executable).parent / "itbpump")
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict | None = None, drop: tuple[str, ...] = ("ITBPUMP_PORT",)) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run([ITBPUMP, *args], capture_output=True, text=True, timeout=60, env={**base, **(env or {})})


def test_status_with_no_board_and_no_sim_is_an_error_and_starts_nothing(tmp_path):
    env = {"ITBPUMP_SIM_DIR": str(tmp_path / "sim")}
    r = run("status", env=env)
    assert r.returncode == 1 and r.stdout == ""
    assert "no pump found" in r.stderr and "--port sim" in r.stderr and "sim start" in r.stderr
    assert r.stderr.strip().count("\n") == 0
    r = run("--json", "status", env=env)
    assert r.returncode == 1 and "no pump found" in json.loads(r.stdout)["error"]
    assert not (tmp_path / "sim").exists() or not any((tmp_path / "sim").iterdir()), "a virtual Pico was started"


def test_port_sim_never_starts_a_board(tmp_path):
    env = {"ITBPUMP_SIM_DIR": str(tmp_path / "sim")}
    for argv in (("--port", "sim", "status"), ("status",)):
        r = run(*argv, env={**env, "ITBPUMP_PORT": "sim"})
        assert r.returncode == 1
        assert "no virtual Pico is running" in r.stderr and "itbpump sim start" in r.stderr
    assert not (tmp_path / "sim").exists() or not any((tmp_path / "sim").iterdir())


def test_every_text_output_of_a_virtual_pico_says_so_first(vpico_port):
    for argv in (["status"], ["log"], ["alarms"], ["limits"], ["clock"], ["ptm"],
                 ["refill", "--removed", "0", "--added", "20", "--concentration", "500", "--dry-run"]):
        r = run("--port", vpico_port, *argv)
        assert r.returncode == 0, r.stderr
        assert "virtual Pico" in r.stdout.splitlines()[0], (argv, r.stdout)
    r = run("--port", vpico_port, "bolus", "--dose", "10", "--over", "1h", "--yes")  # refused: no drug
    assert r.returncode == 1 and r.stdout.startswith("virtual Pico")
    r = run("--port", vpico_port, "--json", "status")
    s = json.loads(r.stdout)
    assert s["board"] == "virtual-pico"


def test_json_after_the_command(vpico_port):
    r = run("--port", vpico_port, "status", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "stopped"
    r = run("--port", vpico_port, "limits", "--json")
    assert "titration_pct" in json.loads(r.stdout)


def _leaves(parser, path=()):
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for a in subs:
        for name, child in a.choices.items():
            yield from _leaves(child, (*path, name))


def test_every_help_text_shows_json():
    leaves = list(_leaves(cli.build_parser()))
    assert len(leaves) > 20
    for path, parser in leaves:
        assert "--json" in parser.format_help(), path
    ns = cli.build_parser().parse_args(["--json", "status"])
    assert ns.json is True  # given before the command, the command's own --json does not reset it


@pytest.mark.parametrize("argv", [
    ["--json", "program", "continuous"],
    ["program", "continuous", "--json"],
    ["--json", "frobnicate"],
    ["log", "--last", "0", "--json"],
    ["--json", "--timeout", "-1", "status"],
])
def test_usage_errors_in_json_mode_are_json(argv):
    r = run(*argv)
    assert r.returncode == 2 and r.stderr == ""
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["error"].startswith("itbpump") and doc["usage"].startswith("usage:")


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-1", "0", "0.01", "61"])
def test_bad_timeout_is_refused_as_such(value):
    r = run("--timeout", value, "status")
    assert r.returncode == 2
    assert f"--timeout: must be a number of seconds from 0.1 to 60, got '{value}'" in r.stderr


def test_closed_pipe_exits_quietly(vpico_port):
    r = subprocess.run(f"'{ITBPUMP}' --port {vpico_port} limits | head -1", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.count("\n") == 1 and r.stderr == ""
    r = subprocess.run(f"'{ITBPUMP}' --port {vpico_port} log --last 100 | true", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert r.stderr == ""


def test_readme_and_help_point_to_docs_that_exist():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        assert (ROOT / target).exists(), target
    assert "../" not in readme
    assert "docs/programmer.md" in cli.EPILOG and (ROOT / "docs" / "programmer.md").exists()
