"""The shape of the code base, kept by tests: small modules and functions, no import circle,
no model-kind branches outside models/, and a command line that starts without torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nextchar"
MAX_MODULE_LINES = 450


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def test_no_module_is_longer_than_the_limit() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: k for n, k in long.items() if k > MAX_MODULE_LINES} == {}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere: in functions (a deferred import is
    still a dependency) and under `if TYPE_CHECKING:` (a type is one too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from nextchar.models import x` is the package; `from nextchar.text import data`
            # names a submodule
            subs = {f"{node.module}.{a.name}" for a in node.names}
            found.update(subs & known or {node.module})
    return {m for m in found if m in known}


# The parts of the house, bottom to top: a module imports only its own part and those below.
PARTS = ("core", "display", "text", "models", "inference", "training", "classroom",
         "api", "serve", "cli", "__init__", "__main__")  # fmt: skip
RANK = {"core": 0, "display": 1, "text": 2, "models": 3, "inference": 4, "training": 5,
        "classroom": 6, "api": 7, "serve": 7, "cli": 8, "__init__": 9, "__main__": 10}  # fmt: skip


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_top_level_is_the_parts_of_the_house() -> None:
    entries = {p.stem for p in SRC.iterdir() if p.name != "__pycache__"}
    assert entries == set(PARTS)
    assert len(entries - {"__init__", "__main__"}) <= 10


def test_a_part_imports_only_itself_and_the_parts_below() -> None:
    mods = modules()
    climbs = sorted(
        f"{name} -> {target}"
        for name, path in mods.items()
        for target in imports_of(path, set(mods))
        if RANK[part_of(target)] > RANK[part_of(name)]
    )
    assert climbs == []


def test_no_import_circle_between_modules() -> None:
    mods = modules()
    graph = {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert circles == []


def test_no_code_outside_models_branches_on_a_model_kind_or_attributes() -> None:
    pattern = re.compile(r"kind ==|cell ==|hasattr\(model|getattr\(model")
    hits = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in modules().values()
        if "models" not in path.relative_to(SRC).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["train", "--help"]])
def test_the_command_line_answers_without_importing_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom nextchar.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60
    )
    assert proc.stderr.strip().splitlines()[-1] == "False", proc.stderr
    assert "nextchar" in proc.stdout
