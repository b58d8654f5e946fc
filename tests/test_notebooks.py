"""The notebooks: generated from their jupytext sources (and up to date), Korean and English
with the same code, exercises blanked in the student versions, and every notebook run top to
bottom in a real Jupyter kernel: an error or a failed exercise check fails the test."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)

SOURCES = build.sources()
HANGUL = re.compile("[가-힣]")


def _code(notebook: nbformat.NotebookNode) -> list[str]:
    """Code cells without comment lines (those are in the notebook's language)."""
    return [
        "\n".join(
            line.split("  # ")[0]
            for line in c.source.splitlines()
            if not line.strip().startswith("#")
        )
        for c in notebook.cells
        if c.cell_type == "code"
    ]


def test_there_are_five_notebooks_in_the_order_of_the_notes() -> None:
    assert [p.stem[:2] for p in SOURCES] == ["01", "02", "03", "04", "05"]


def test_generated_notebooks_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in build.outputs().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run python notebooks/build.py: {stale}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_korean_and_english_share_the_code(source: Path) -> None:
    ko, en = build.build(source, "ko", False), build.build(source, "en", False)
    assert _code(ko) == _code(en)
    ko_prose = [c.source for c in ko.cells if c.cell_type == "markdown"]
    en_prose = [c.source for c in en.cells if c.cell_type == "markdown"]
    assert len(ko_prose) == len(en_prose) >= 5
    assert all(HANGUL.search(text) for text in ko_prose)
    # English prose quotes Korean examples at most: most of its cells have no Hangul at all
    assert sum(bool(HANGUL.search(text)) for text in en_prose) <= len(en_prose) // 3


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_exercise_versions_blank_every_answer(source: Path) -> None:
    for lang in build.LANGS:
        full, blank = build.build(source, lang, False), build.build(source, lang, True)
        exercises = [c for c in full.cells if "exercise" in c.metadata.get("tags", [])]
        assert len(exercises) >= 2, "a few exercise cells per notebook"
        assert all("assert " in c.source for c in exercises)
        answers = sum(c.source.count(build.ANSWER[lang]) for c in full.cells)
        blanks = sum(c.source.count(build.BLANK[lang]) for c in blank.cells)
        assert answers == blanks >= len(exercises)
        assert not any(build.ANSWER[lang] in c.source for c in blank.cells)


def _execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return notebook


@pytest.fixture(scope="module")
def classroom(tmp_path_factory) -> Path:
    """One folder for every notebook, as a student's: they run one after another in it."""
    return tmp_path_factory.mktemp("classroom")


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(source: Path, classroom: Path) -> None:
    """The Korean notebook with answers, as a student would run it; the English one has the
    same code (above)."""
    notebook = _execute(NOTEBOOKS / "ko" / f"{source.stem}.ipynb", classroom)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    checks = [
        o.text
        for c in notebook.cells
        if "exercise" in c.metadata.get("tags", [])
        for o in c.outputs
        if o.output_type == "stream"
    ]
    assert sum("✔" in text for text in checks) >= 2, "the exercise checks ran and passed"
    warnings = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not [w for w in warnings if "missing from" in w or "Traceback" in w], warnings


@pytest.mark.slow
@pytest.mark.parametrize("name", ["04_gpt2"])  # two runs named by the library, as in 03 and 05
def test_a_notebook_runs_again_in_the_same_folder(name: str, classroom: Path) -> None:
    """Run a second time where it ran (after the test above): its runs get new directories
    (runs/korean-2, ...) instead of refusing the first run's."""
    runs_before = set((classroom / "runs").iterdir())
    notebook = _execute(NOTEBOOKS / "en" / f"{name}.ipynb", classroom)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert set((classroom / "runs").iterdir()) > runs_before


def test_a_blank_exercise_fails_its_check(tmp_path: Path) -> None:
    with pytest.raises(CellExecutionError, match="AssertionError"):
        _execute(NOTEBOOKS / "en" / "exercises" / "01_rnn_lab.ipynb", tmp_path)
