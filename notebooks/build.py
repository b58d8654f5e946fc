"""Build the notebooks from their sources.

Each `notebooks/NN_name.py` (jupytext's percent format) is the one source of truth for four
generated notebooks:

    ko/NN_name.ipynb              Korean, with the answers
    en/NN_name.ipynb              English, with the answers
    ko/exercises/NN_name.ipynb    Korean, every answer line blanked for students
    en/exercises/NN_name.ipynb    English, the same

In a source, a markdown cell tagged `lang="ko"` or `lang="en"` goes to that language only
(untagged cells go to both), a code line `# ko: ...` or `# en: ...` is a comment in that
language only, and a code line ending in `# solution` is an exercise's answer: kept in the
notebooks with answers, replaced by `... ` in the exercise ones (whose checks then fail until
the student fills it in).

    python notebooks/build.py           write the generated notebooks
    python notebooks/build.py --check   exit 1 if any is out of date (CI runs this as a test)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
LANGS = ("ko", "en")
ANSWER = {"ko": "# 정답", "en": "# answer"}
BLANK = {"ko": "# 채워 넣으세요", "en": "# fill in"}
LANG_COMMENT = re.compile(r"^(\s*)# (ko|en): ?(.*)$")
SOLUTION = re.compile(r"^(\s*)(.*?)\s*# solution$")
ASSIGNMENT = re.compile(r"^([\w\[\]\.\, ]+?)\s*=\s*(?!=)")


def sources() -> list[Path]:
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def _code_line(line: str, lang: str, exercise: bool) -> str | None:
    """A source code line as it appears in `lang` (None: not at all)."""
    comment = LANG_COMMENT.match(line)
    if comment:
        indent, which, text = comment.groups()
        return f"{indent}# {text}".rstrip() if which == lang else None
    solution = SOLUTION.match(line)
    if solution:
        indent, code = solution.groups()
        if not exercise:
            return f"{indent}{code}  {ANSWER[lang]}"
        target = ASSIGNMENT.match(code)
        blank = f"{target.group(1)} = ..." if target else "..."
        return f"{indent}{blank}  {BLANK[lang]}"
    return line


def _code(source: str, lang: str, exercise: bool) -> str:
    lines = (_code_line(line, lang, exercise) for line in source.splitlines())
    return "\n".join(line for line in lines if line is not None)


def build(path: Path, lang: str, exercise: bool) -> nbformat.NotebookNode:
    """One generated notebook from one source: cells in order, outputs empty, ids fixed (so
    that building twice gives the same file)."""
    notebook = jupytext.read(path)
    cells = []
    for cell in notebook.cells:
        if cell.metadata.get("lang", lang) != lang:
            continue
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_code_cell(_code(cell.source, lang, exercise))
            if "tags" in cell.metadata:
                new.metadata["tags"] = list(cell.metadata["tags"])
        new.id = f"{lang}-{len(cells):02d}"
        cells.append(new)
    out = nbformat.v4.new_notebook(cells=cells)
    out.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "nextchar": {"source": f"notebooks/{path.name}", "lang": lang, "exercise": exercise},
    }
    return out


def target(path: Path, lang: str, exercise: bool) -> Path:
    folder = HERE / lang / ("exercises" if exercise else "")
    return folder / f"{path.stem}.ipynb"


def outputs() -> dict[Path, str]:
    """Every generated notebook and its text."""
    return {
        target(path, lang, exercise): nbformat.writes(build(path, lang, exercise)) + "\n"
        for path in sources()
        for lang in LANGS
        for exercise in (False, True)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check they are up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "out of date" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(HERE.parent)}")
    if args.check and stale:
        print("run: python notebooks/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
