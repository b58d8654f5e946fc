"""Built-in corpora: shipped in the package, read by name wherever a file works, a local path
of the same name wins, and `nextchar corpora` lists them."""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from pathlib import Path

import pytest

from conftest import TINY_FLAGS
from nextchar import NextcharError
from nextchar.text.corpora import CORPORA, SPLITS, default_validation, parse_name
from nextchar.text.data import read_text
from nextchar.training.plan import plan_run

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_FLAGS


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_each_split_reads_and_matches_its_listed_size(name) -> None:
    corpus = CORPORA[name]
    for split, listed in zip(SPLITS, corpus.chars, strict=True):
        text = read_text(f"{name}:{split}")
        assert len(unicodedata.normalize("NFC", text)) == listed
        assert "\r" not in text
    assert read_text(name) == read_text(f"{name}:train")


def test_korean_corpus_is_korean_and_shakespeare_is_english() -> None:
    korean = read_text("korean:val")
    hangul = sum("가" <= ch <= "힣" for ch in korean)
    assert hangul > len(korean) / 3
    assert "ROMEO" in read_text("shakespeare")


def test_names_parse_and_bad_ones_do_not() -> None:
    assert parse_name("shakespeare") == (CORPORA["shakespeare"], "train")
    assert parse_name("korean:val") == (CORPORA["korean"], "val")
    for bad in ("shakespeare:test", "hamlet", "", ":val"):
        assert parse_name(bad) is None


def test_a_local_path_of_the_same_name_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("shakespeare").write_text("my own text", encoding="utf-8")
    assert read_text("shakespeare") == "my own text"
    Path("korean").mkdir()
    (Path("korean") / "a.txt").write_text("하나", encoding="utf-8")
    assert read_text("korean") == "하나"
    assert read_text("korean:val") == CORPORA["korean"].text("val")  # no such path: built-in


def test_an_unknown_name_says_where_names_come_from(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NextcharError, match=r"no such file or directory: hamlet.*nextchar corpora"):
        read_text("hamlet")


def test_run_directories_of_corpus_splits_have_no_colon(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert plan_run(["shakespeare:val"], {}, {}).run_dir == Path("runs/shakespeare-val")
    assert plan_run(["korean"], {}, {}).run_dir == Path("runs/korean")


def test_training_on_a_corpus_validates_on_its_own_validation_text() -> None:
    assert default_validation(["korean"]) == "korean:val"
    assert default_validation(["korean:train"]) is None  # asks for --val-fraction's cut
    assert default_validation(["korean", "shakespeare"]) is None
    plan = plan_run(["korean"], {}, {})
    assert plan.train.val_file == "korean:val"
    assert plan_run(["korean"], {}, {"val_fraction": 0.2}).train.val_file is None
    assert plan_run(["korean"], {}, {"val_file": "x.txt"}).train.val_file == "x.txt"


def test_the_package_data_ships_every_corpus_file() -> None:
    """A wheel holds what pyproject's package-data names: every corpus file must match."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = pyproject.split("[tool.setuptools.package-data]", 1)[1]
    globs = re.findall(r'"([^"]+)"', re.search(r"nextchar = \[(.*?)\]", section).group(1))
    folder = ROOT / "src" / "nextchar" / "text" / "corpora"
    package = ROOT / "src" / "nextchar"
    files = [p.relative_to(package).as_posix() for p in folder.iterdir() if p.is_file()]
    data = [f for f in files if not f.endswith(".py")]
    assert "text/corpora/SOURCES.md" in data
    for name in CORPORA:
        for split in SPLITS:
            assert f"text/corpora/{name}_{split}.txt.xz" in data
    for f in data:
        assert any(fnmatch.fnmatch(f, g) for g in globs), f


def test_corpora_command_lists_names_sizes_and_licences(cli) -> None:
    code, out, _ = cli("corpora")
    assert code == 0
    for corpus in CORPORA.values():
        line = next(line for line in out.splitlines() if line.startswith(corpus.name + " "))
        assert f"{corpus.chars[0]:,}" in line and corpus.licence in line
        assert "MB" in line
    assert "SOURCES.md" in out and "NAME:val" in out


def test_train_and_eval_take_corpus_names(tmp_path, cli) -> None:
    run = tmp_path / "ko"
    proc = cli(
        "train", "korean", "--max-steps", "2", "--eval-every", "2", "--quiet", "--out", run,
        "--device", "cpu", *TINY, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "validation text: korean:val" in proc.stdout
    proc = cli("eval", run, "korean:val", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # every character but the first is predicted
    assert f"korean:val: {CORPORA['korean'].chars[1] - 1:,} characters predicted" in proc.stdout
