"""The pump's clinical and mechanical constants, read from the firmware's source as data.

Each fact (stroke volume, drug library, titration ranges per profile, reason lengths, alarm
codes and priorities, ...) is defined once, in the firmware module that enforces it. The host
needs some of them to check what a clinician types before any port is opened, and the bench,
the rig and the demo to compute expectations; instead of a second copy they read the
definition here. Like `state_model` with `fsm_table.py`, nothing of the firmware is imported
or run: each firmware file is parsed (`ast`) and only its module-level constants are
evaluated: literals, `const(...)`, names of other constants and integer arithmetic, and the
literal a function without arguments returns (`limits.defaults()`). A `_NAME = const(n)` is
read too: MicroPython folds it away (no heap, no global), so the firmware names a fact only the
host reads that way.

A constant is found by its name wherever it is defined under `firmware/`, so moving a module
(or splitting the folder into packages) changes nothing here; a name defined twice is an
error (`FactError`): one place per fact. tests/test_one_place.py checks the second copies
that remain (docs, wire answers) against these.
"""

from __future__ import annotations

import ast
import operator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
        ast.Mod: operator.mod, ast.Pow: operator.pow, ast.LShift: operator.lshift}


class FactError(LookupError):
    """A fact the firmware does not define once as a constant."""


@cache
def _definitions() -> dict[str, list[tuple[Path, ast.expr]]]:
    """Every module-level `NAME = value` (and `NAME: T = value`) under firmware/, by name."""
    out: dict[str, list[tuple[Path, ast.expr]]] = {}
    for path in sorted(FIRMWARE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                out.setdefault(node.targets[0].id, []).append((path, node.value))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                out.setdefault(node.target.id, []).append((path, node.value))
            elif isinstance(node, ast.FunctionDef) and (ret := _literal_return(node)) is not None:
                out.setdefault(node.name, []).append((path, ret))  # `def defaults(): return {...}`
    return out


def _literal_return(fn: ast.FunctionDef) -> ast.expr | None:
    """The value of a function without arguments whose body is only `return <value>` (after a
    docstring): a fresh copy of data on the board each call, plain data here."""
    body = fn.body[1:] if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) \
        else fn.body
    a = fn.args
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None or fn.decorator_list \
            or a.args or a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg:
        return None
    return body[0].value


def where(name: str) -> Path:
    """The firmware file that defines `name` (exactly one does)."""
    found = _definitions().get(name, [])
    if len(found) != 1:
        places = ", ".join(str(p.relative_to(FIRMWARE)) for p, _ in found) or "nowhere"
        raise FactError(f"firmware constant {name} must be defined in one place, found: {places}")
    return found[0][0]


@cache
def fact(name: str) -> Any:
    """The value of the firmware's module-level constant `name`."""
    path = where(name)
    return _value(_definitions()[name][0][1], name, path)


def _value(node: ast.expr, name: str, path: Path) -> Any:
    """A constant's value; a name in it is the same file's constant, else (imported) the one of that name."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        local = [v for p, v in _definitions().get(node.id, []) if p == path]
        return _value(local[-1], node.id, path) if local else fact(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const" \
            and len(node.args) == 1 and not node.keywords:
        return _value(node.args[0], name, path)
    if isinstance(node, ast.Tuple):
        return tuple(_value(e, name, path) for e in node.elts)
    if isinstance(node, ast.List):
        return [_value(e, name, path) for e in node.elts]
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {_value(k, name, path): _value(v, name, path)  # type: ignore[arg-type]
                for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_value(node.left, name, path), _value(node.right, name, path))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand, name, path)
    raise FactError(f"firmware constant {name} is not plain data: {ast.unparse(node)}")


# -- the facts the host uses, by what they mean -----------------------------------------------

def stroke_nl() -> int:
    """One pump stroke, nL (firmware dose.STROKE_NL)."""
    return int(fact("STROKE_NL"))


def ml(nl: int) -> str:
    """nL as mL, as short as exact, for a fact said in a sentence: 48000 -> '0.048', 24000000 -> '24'."""
    return format((Decimal(nl) / 1_000_000).normalize(), "f")


def titration_range() -> dict[str, tuple[int, int]]:
    """Patient profile -> the titration limit's allowed (lowest, highest) % per 24 h (limits.PROFILES)."""
    return {p: (lo, hi) for p, (lo, hi, _default) in fact("PROFILES").items()}


def ranges_text(ranges: dict[str, tuple[int, int]], dash: str = "..") -> str:
    """'spinal 10..30 %, cerebral and pediatric 5..15 %': profiles with the same range said together."""
    groups: dict[tuple[int, int], list[str]] = {}
    for p, r in ranges.items():
        groups.setdefault(r, []).append(p)
    def names(ps: list[str]) -> str:
        return ps[0] if len(ps) == 1 else f"{', '.join(ps[:-1])} and {ps[-1]}"

    return ", ".join(f"{names(ps)} {lo}{dash}{hi} %" for (lo, hi), ps in groups.items())
