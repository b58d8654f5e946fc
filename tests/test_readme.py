"""What the READMEs show must work from a clone or a pip install alone: no path outside the
repository, every linked file present, every text a command reads a built-in corpus or a
file in the repository."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nextchar.text.corpora import parse_name

ROOT = Path(__file__).resolve().parents[1]
READMES = [
    ROOT / "README.md",
    ROOT / "README.ko.md",
    ROOT / "notebooks" / "README.md",
    ROOT / "bench" / "RESULTS.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
# what a command line costs to run here: these run in full, every other one is parsed
CHEAP = {"shapes", "corpora"}
READS_TEXT = {"train": 0, "eval": 1, "tokens": 1, "compare": 0}  # command -> first text arg


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_names_nothing_outside_the_repository(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    assert "../shared" not in text and "shared/data" not in text and "seed-lab" not in text


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_linked_file_exists(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)\)", text):
        if not target.startswith(("http://", "https://")):
            assert (readme.parent / target).exists(), target


def _commands(text: str) -> list[list[str]]:
    blocks = re.findall(r"```(?:bash|text)\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("$ ").split("#")[0].strip()
            if line.startswith("nextchar "):
                commands.append(shlex.split(line))
    return commands


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_text_a_command_reads_is_built_in_or_in_the_repository(readme: Path) -> None:
    commands = _commands(readme.read_text(encoding="utf-8"))
    checked = 0
    for argv in commands:
        command, args = argv[1], argv[2:]
        if command not in READS_TEXT:
            continue
        positional = []
        for arg in args:
            if arg.startswith("-"):
                break
            positional.append(arg)
        for text in positional[READS_TEXT[command] : READS_TEXT[command] + 1]:
            if text.startswith("runs/") or text in {"gpt2", "FILE", "RUN"}:
                continue
            inside = (ROOT / text).resolve()
            in_repo = inside.is_relative_to(ROOT) and inside.exists()
            assert parse_name(text) is not None or in_repo, (argv, text)
            checked += 1
    assert checked or readme != ROOT / "README.md"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_a_page_shows_parses_and_the_cheap_ones_run(readme: Path) -> None:
    """A flag renamed or removed breaks the page that shows it: every `nextchar` line is
    parsed by the real parser; `shapes` and `corpora` lines run as written."""
    from conftest import in_process
    from nextchar.cli import build_parser

    for argv in _commands(readme.read_text(encoding="utf-8")):
        try:
            build_parser().parse_args(argv[1:])
        except SystemExit as exc:
            pytest.fail(f"{readme.name}: {shlex.join(argv)} does not parse (exit {exc.code})")
        if argv[1] in CHEAP:
            proc = in_process(*argv[1:])
            assert proc.returncode == 0, (argv, proc.stderr)
