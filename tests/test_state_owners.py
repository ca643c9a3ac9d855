"""One owner per piece of state (issue 14 item 2): the device's state is held in a few parts
(`dev.therapy`, `dev.safety`, `dev.session`, `dev.alarms`, `dev.storage`, and the core on `dev`
itself), and docs/architecture.md section 8 says in one table which firmware modules may write
each attribute. This test reads that table as data and walks every firmware module's syntax tree
(nothing is imported or run): a write by a module the table does not name, or to an attribute the
table does not list, fails; so does a writer the table names that no longer writes.

A write is an assignment, an augmented assignment or a `del` whose target is the attribute or
lies inside it (`dev.safety.hist[i] += d`, `dev.alarms.dates[2] = True`), or a call of a mutating
method on it (`dev.safety.ptm_used.append(now)`), directly or through a local name bound to it in
the same function (`h = dev.safety.hist`; `h[i] += d`), or by handing it to a firmware function
that changes that parameter (`limits.record(dev.safety.hist, ...)` is a write by its caller,
`committed`). Calling a part's own methods (`dev.alarms.clear(code)`) is the part's business
(its class's module owns what they change), not a write.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

PARTS = ("therapy", "safety", "session", "alarms", "storage")  # dev.<part>: the device's state by owner
# `self` in these classes is the device or one of its parts
SELF_IS = {("core.device", "Device"): "dev", ("alarms.catalogue", "Alarms"): "dev.alarms",
           ("therapy.engine", "Therapy"): "dev.therapy"}
CREATOR = ("core.device", "Device", "__init__")  # builds every part with its initial values
MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "sort", "reverse", "setdefault",
            "popitem"}


def owners_rows() -> list[tuple[str, list[str], set[str]]]:
    """(holder, attributes or ["*"], the modules that may write them) per row of
    docs/architecture.md section 8."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index("## 8. Who owns what"):]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`"):
            continue
        holder = re.findall(r"`([\w.]+)`", cells[1])[0]
        attrs = re.findall(r"`([\w*]+)`", re.sub(r"\([^)]*\)", "", cells[2]))
        writers = set(re.findall(r"`([\w.]+)`", re.sub(r"\([^)]*\)", "", cells[3])))
        assert attrs and writers, f"row without attributes or writers: {line}"
        rows.append((holder, attrs, writers))
    assert rows, "docs/architecture.md section 8 has no owners table"
    return rows


def owners_table() -> dict[tuple[str, str], set[str]]:
    """{(holder, attribute or "*"): the modules that may write it}."""
    table: dict[tuple[str, str], set[str]] = {}
    for holder, attrs, writers in owners_rows():
        for a in attrs:
            assert (holder, a) not in table, f"{holder}.{a} is in two rows of the owners table"
            table[(holder, a)] = writers
    return table


class Writes(ast.NodeVisitor):
    """Every write to the device's state in one module: (holder, attribute, function, line, in the
    creator). params: {(module, function): indices of the parameters it writes}, for calls."""

    def __init__(self, module: str, params: dict | None = None, of_params: bool = False):
        self.module = module
        self.params = params or {}
        self.of_params = of_params  # find what each function writes of its own parameters instead
        self.cls: str | None = None
        self.found: list[tuple] = []
        self.calls: dict[str, tuple[str, str]] = {}  # local name -> (module, function) it calls
        self.mods: dict[str, str] = {}  # local name -> the module it names (from safety import limits)

    def visit_Module(self, node: ast.Module) -> None:
        for sub in node.body:
            if isinstance(sub, ast.ImportFrom) and sub.module:
                for a in sub.names:
                    self.calls[a.asname or a.name] = (sub.module, a.name)
                    self.mods[a.asname or a.name] = sub.module + "." + a.name  # if a.name is a module
            elif isinstance(sub, ast.FunctionDef):
                self.calls[sub.name] = (self.module, sub.name)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer, self.cls = self.cls, node.name
        self.generic_visit(node)
        self.cls = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if self.of_params:
            roots = {a.arg: ("@%d" % i,) for i, a in enumerate(node.args.args)}
        else:
            roots = {"dev": ("dev",)}
            self_is = SELF_IS.get((self.module, self.cls or ""))
            if self_is and node.args.args and node.args.args[0].arg == "self":
                roots = {"self": tuple(self_is.split("."))}
        aliases: dict[str, tuple[str, ...]] = {}
        for sub in ast.walk(node):  # local names bound to a part of the state (h = dev.safety.hist)
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    self._alias(target, sub.value, roots, aliases)
        where = f"{self.cls + '.' if self.cls else ''}{node.name}"
        creating = (self.module, self.cls, node.name) == CREATOR
        for sub in ast.walk(node):
            targets: list[ast.expr] = []
            if isinstance(sub, (ast.Assign, ast.Delete)):
                targets = list(sub.targets)
            elif isinstance(sub, (ast.AugAssign, ast.AnnAssign)):
                targets = [sub.target]
            elif isinstance(sub, ast.Call):
                self._call(sub, roots, aliases, where, creating)
                continue
            for t in self._flatten(targets):
                if isinstance(t, ast.Name):
                    if isinstance(sub, ast.AugAssign) and t.id in aliases:  # h += ...: the list in place
                        self._write(aliases[t.id], where, sub.lineno, creating)
                    continue
                path = self._path(t, roots, aliases)
                if path:
                    self._write(path, where, sub.lineno, creating)
        outer, self.cls = self.cls, None  # nested functions see no `self`
        self.generic_visit(node)
        self.cls = outer

    def _call(self, call: ast.Call, roots: dict, aliases: dict, where: str, creating: bool) -> None:
        """A mutating method on the state (h.append(x)), or the state handed to a firmware function
        that writes that parameter (limits.record(dev.safety.hist, ...))."""
        f = call.func
        if isinstance(f, ast.Attribute) and f.attr in MUTATORS:
            path = self._path(f.value, roots, aliases)
            if path and self._inside(path):  # inside an attribute, not a part's own method
                self._write(path, where, call.lineno, creating)
            return
        callee = None
        if isinstance(f, ast.Name):
            callee = self.calls.get(f.id)
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id not in roots:
            callee = (self.mods.get(f.value.id, f.value.id), f.attr)
        for i in self.params.get(callee, ()):
            if i < len(call.args):
                path = self._path(call.args[i], roots, aliases)
                if path and self._inside(path):
                    self._write(path, where, call.lineno, creating)

    @staticmethod
    def _inside(path: tuple[str, ...]) -> bool:
        """An attribute of the state (or inside one), not the device or one of its parts."""
        if path[0].startswith("@"):
            return True
        return len(path) >= 2 + (len(path) >= 2 and path[1] in PARTS)

    @staticmethod
    def _flatten(targets: list[ast.expr]) -> list[ast.expr]:
        out: list[ast.expr] = []
        for t in targets:
            out += Writes._flatten(list(t.elts)) if isinstance(t, (ast.Tuple, ast.List)) else [t]
        return out

    def _alias(self, target: ast.expr, value: ast.expr, roots: dict, aliases: dict) -> None:
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
            for t, v in zip(target.elts, value.elts):
                self._alias(t, v, roots, aliases)
        elif isinstance(target, ast.Name):
            path = self._path(value, roots, aliases)
            if path and (len(path) >= 2 or path[0].startswith("@")):
                aliases[target.id] = path

    @staticmethod
    def _path(node: ast.expr, roots: dict, aliases: dict) -> tuple[str, ...] | None:
        """("dev", "safety", "hist", ...) for an expression inside the device's state, else None."""
        names: list[str] = []
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute):
                names.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = roots.get(node.id) or aliases.get(node.id)
        return None if base is None else base + tuple(reversed(names))

    def _write(self, path: tuple[str, ...], where: str, line: int, creating: bool) -> None:
        if path[0].startswith("@"):
            self.found.append((int(path[0][1:]), None, where, line, creating))
        elif len(path) >= 2:
            if path[1] in PARTS and len(path) >= 3:
                self.found.append(("dev." + path[1], path[2], where, line, creating))
            else:
                self.found.append(("dev", path[1], where, line, creating))


def _path(module: str) -> str:
    """core.device -> core/device.py: a firmware module by the name it is imported by."""
    return module.replace(".", "/") + ".py"


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(FIRMWARE.rglob("*.py")):
        module = path.relative_to(FIRMWARE).with_suffix("").as_posix().replace("/", ".")
        out.append((module, ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return out


def firmware_writes() -> list[tuple[str, str, str, str, int, bool]]:
    modules = _modules()
    params: dict[tuple[str, str], set[int]] = {}  # what each function writes of its parameters
    for module, tree in modules:
        w = Writes(module, of_params=True)
        w.visit(tree)
        for i, _, where, _, _ in w.found:
            params.setdefault((module, where.split(".")[-1]), set()).add(i)
    out = []
    for module, tree in modules:
        w = Writes(module, params)
        w.visit(tree)
        out += [(module, *f) for f in w.found]
    return out


def test_every_write_to_the_device_state_is_by_an_owner_the_table_names():
    table = owners_table()
    wrong = []
    for module, holder, attr, where, line, creating in firmware_writes():
        writers = table.get((holder, attr)) or table.get((holder, "*"))
        if writers is None:
            wrong.append(f"firmware/{_path(module)}:{line} ({where}) writes {holder}.{attr}, which the owners "
                         "table (docs/architecture.md section 8) does not list")
        elif module not in writers and not creating:
            wrong.append(f"firmware/{_path(module)}:{line} ({where}) writes {holder}.{attr}, owned by "
                         f"{', '.join(sorted(writers))} (docs/architecture.md section 8)")
    assert not wrong, "\n".join(wrong)


def test_every_writer_the_table_names_writes():
    """A module named as a writer that no longer writes is a stale row: the table says who owns
    what, so it must stay true."""
    seen = {(m, holder, attr) for m, holder, attr, _, _, creating in firmware_writes() if not creating}
    stale = []
    for holder, attrs, writers in owners_rows():
        for m in sorted(writers):
            if not any(s[0] == m and s[1] == holder and (s[2] in attrs or attrs == ["*"]) for s in seen):
                stale.append(f"{holder} {', '.join(attrs)}: the table names `{m}`, which writes none of them")
    assert not stale, "\n".join(stale)


@pytest.mark.parametrize("module,cls", sorted({(m, c) for m, c in SELF_IS}))
def test_the_classes_that_hold_the_state_exist(module, cls):
    tree = ast.parse((FIRMWARE / _path(module)).read_text(encoding="utf-8"))
    assert any(isinstance(n, ast.ClassDef) and n.name == cls for n in tree.body), f"{module}.{cls} is gone"


def test_the_check_catches_a_write_by_another_module(tmp_path):
    """The walker sees writes through the part, through a local name, inside a list and by a
    mutating call: a module that is no owner is caught each way."""
    src = ("def f(dev):\n"
           "    dev.safety.lim = {}\n"
           "    h = dev.safety.hist\n"
           "    h[0] += 1\n"
           "    dev.safety.ptm_used.append(1)\n"
           "    s = dev.session\n"
           "    s.pending = None\n"
           "    dev.alarms.dates[2] = True\n"
           "    dev.alarms.clear('x')\n"  # the part's own method: not a write here
           "    dev.nothing = 1\n")
    w = Writes("intruder")
    w.visit(ast.parse(src))
    assert [(h, a) for h, a, _, _, _ in sorted(w.found, key=lambda f: f[3])] == [
        ("dev.safety", "lim"), ("dev.safety", "hist"), ("dev.safety", "ptm_used"), ("dev.session", "pending"),
        ("dev.alarms", "dates"), ("dev", "nothing")]
