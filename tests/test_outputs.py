"""Files a command writes for the user: nothing of theirs is replaced without --overwrite, a
default name is numbered when taken, and a failed write leaves the old file whole."""

from __future__ import annotations

import json

import pytest

from conftest import tiny_checkpoint
from nextchar.core.outputs import numbered, replacing

TEXT = "to be, or not to be, that is the question\n" * 20


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return tiny_checkpoint(tmp_path_factory.mktemp("m"), TEXT, hidden_size=8)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    path = tmp_path / "chart.png"
    path.write_bytes(b"the user's chart")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_bytes(b"half a ch")
        raise RuntimeError("the disk filled up")
    assert path.read_bytes() == b"the user's chart"
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]
    with replacing(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_default_names_are_numbered_past_taken_ones(tmp_path) -> None:
    assert numbered(tmp_path / "compare.png") == tmp_path / "compare.png"
    (tmp_path / "compare.png").touch()
    (tmp_path / "compare-2.png").touch()
    assert numbered(tmp_path / "compare.png") == tmp_path / "compare-3.png"
    (tmp_path / "runs").mkdir()
    assert numbered(tmp_path / "runs") == tmp_path / "runs-2"


def test_export_keeps_an_existing_file_unless_asked(ckpt, tmp_path, cli, one_line) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"the user's model")
    code, _, err = cli("export", ckpt, out)
    one_line(code, err, r"m\.onnx exists; add --overwrite to replace it")
    assert out.read_bytes() == b"the user's model"
    assert cli("export", ckpt, out, "--overwrite").returncode == 0
    assert out.stat().st_size > 1000 and list(tmp_path.iterdir()) == [out]


def test_compare_numbers_its_default_chart_and_keeps_a_named_one(
    ckpt, tmp_path, cli, one_line
) -> None:
    (tmp_path / "val.txt").write_text(TEXT[:200])
    for _ in range(2):
        assert cli("compare", "val.txt", ckpt, cwd=tmp_path).returncode == 0
    charts = sorted(p.name for p in tmp_path.glob("*.png"))
    assert charts == ["compare-2.png", "compare.png"]
    before = (tmp_path / "compare.png").read_bytes()
    code, _, err = cli("compare", "val.txt", ckpt, "--out", "compare.png", cwd=tmp_path)
    one_line(code, err, "compare.png exists; add --overwrite")
    assert (tmp_path / "compare.png").read_bytes() == before


def test_long_range_keeps_earlier_results(tmp_path, cli, one_line) -> None:
    small = ("--distances", "2", "--seeds", "1", "--steps", "2", "--cells", "rnn",
             "--tasks", "remember")  # fmt: skip
    for _ in range(2):  # the default folder: a second run writes beside the first
        assert cli("experiment", "long-range", *small, cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["long-range", "long-range-2"]
    mine = tmp_path / "runs" / "long-range" / "results.json"
    mine.write_text('{"mine": true}')
    code, _, err = cli("experiment", "long-range", *small, "--out", mine.parent)
    one_line(code, err, "results.json exists; add --overwrite")
    assert json.loads(mine.read_text()) == {"mine": True}
    assert cli("experiment", "long-range", *small, "--out", mine.parent, "--overwrite")[0] == 0
    assert "accuracy" in json.loads(mine.read_text())
