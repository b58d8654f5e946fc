import json
import os

import pytest
import torch

from nextchar import NextcharError
from nextchar.core.config import model_config
from nextchar.models import build_model, load, load_checkpoint
from nextchar.models import checkpoint as ckpt_module
from nextchar.models.checkpoint import save_checkpoint
from nextchar.text.tokenizers import CharTokenizer

TEXT = "hello, 세계! hello again."


def make(seed: int = 0, **overrides):
    tok = CharTokenizer.build(TEXT, normalization="nfd")
    torch.manual_seed(seed)
    model = build_model(
        model_config(
            **{
                "vocab_size": tok.vocab_size,
                "cell": "lstm",
                "hidden_size": 8,
                "num_layers": 2,
                **overrides,
            }
        )
    )
    return model.eval(), tok


def logits(model, tok) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([tok.encode(TEXT)]))[0]


@pytest.mark.parametrize(
    "overrides", [{}, {"tie_weights": True, "embedding_dim": 8}, {"cell": "gru", "input": "onehot"}]
)
def test_round_trip_gives_identical_logits(tmp_path, overrides) -> None:
    model, tok = make(**overrides)
    save_checkpoint(tmp_path / "ckpt", model, tok, {"step": 3})
    loaded = load_checkpoint(tmp_path / "ckpt", device="cpu")
    assert torch.equal(logits(loaded.model, loaded.tokenizer), logits(model, tok))
    assert loaded.tokenizer.to_dict() == tok.to_dict()
    assert loaded.meta["step"] == 3 and loaded.meta["format_version"] == 1
    if overrides.get("tie_weights"):
        assert loaded.model.head.weight.data_ptr() == loaded.model.embedding.weight.data_ptr()


def test_a_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    old_model, tok = make(seed=0)
    save_checkpoint(tmp_path / "ckpt", old_model, tok)
    new_model, _ = make(seed=1)

    def crash(tensors, filename, *args, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"half a file")  # the process dies mid-write
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "ckpt", new_model, tok)
    model, tok2 = load(tmp_path / "ckpt", device="cpu")
    assert torch.equal(logits(model, tok2), logits(old_model, tok))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary left over


def test_a_crash_between_the_two_renames_is_recovered(tmp_path) -> None:
    model, tok = make()
    save_checkpoint(tmp_path / "ckpt", model, tok)
    os.rename(tmp_path / "ckpt", tmp_path / "ckpt.old")  # died after moving the old one aside
    loaded, _ = load(tmp_path / "ckpt", device="cpu")
    assert torch.equal(logits(loaded, tok), logits(model, tok))


def test_a_run_directory_loads_its_best_checkpoint(tmp_path) -> None:
    best, tok = make(seed=0)
    last, _ = make(seed=1)
    save_checkpoint(tmp_path / "run" / "best", best, tok)
    save_checkpoint(tmp_path / "run" / "last", last, tok)
    model, _ = load(tmp_path / "run", device="cpu")
    assert torch.equal(logits(model, tok), logits(best, tok))


def damage(tmp_path, how: str):
    model, tok = make()
    path = save_checkpoint(tmp_path / "ckpt", model, tok)
    weights, config = path / "model.safetensors", path / "config.json"
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif how == "missing weights":
        weights.unlink()
    elif how == "bad json":
        config.write_text("{not json")
    elif how == "foreign json":
        config.write_text(json.dumps({"architectures": ["SomethingElse"]}))
    elif how == "future version":
        meta = json.loads(config.read_text())
        config.write_text(json.dumps({**meta, "format_version": 99}))
    elif how == "other weights":
        other, _ = make(hidden_size=4)
        from safetensors.torch import save_file

        save_file(other.state_dict(), str(weights))
    elif how == "pickle bomb":
        weights.write_bytes(b"\x80\x04\x95" + os.urandom(64))
    elif how == "nan weights":
        model.head.bias.data[0] = float("nan")  # what a diverged run of an old version saved
        save_checkpoint(path, model, tok)
    else:  # hand edits of config.json
        meta = json.loads(config.read_text())
        edits = {
            "deep nesting": lambda m: "[" * 100_000 + "]" * 100_000,
            "string size": lambda m: {**m, "model": {**m["model"], "hidden_size": "abc"}},
            "float size": lambda m: {**m, "model": {**m["model"], "hidden_size": 2.5}},
            "boolean size": lambda m: {**m, "model": {**m["model"], "num_layers": True}},
            "no model": lambda m: {k: v for k, v in m.items() if k != "model"},
            "no tokenizer": lambda m: {k: v for k, v in m.items() if k != "tokenizer"},
            "string version": lambda m: {**m, "format_version": "1"},
            "vocab of numbers": lambda m: {**m, "tokenizer": {**m["tokenizer"], "vocab": [1, 2]}},
            "bad bpe": lambda m: {**m, "tokenizer": {"type": "bpe", "tokenizer": {"model": 7}}},
            "huge model": lambda m: {**m, "model": {**m["model"], "hidden_size": 10**9}},
        }
        edited = edits[how](meta)
        config.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    return path


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated weights", "cannot be read"),
        ("missing weights", "no model.safetensors"),
        ("bad json", "not JSON"),
        ("foreign json", "not a nextchar checkpoint"),
        ("future version", "format version 99"),
        ("other weights", "cannot be read|does not match"),
        ("pickle bomb", "cannot be read"),
        ("nan weights", "NaN or infinity.*diverged"),
        ("deep nesting", "nests too deeply"),
        ("string size", "hidden_size must be an integer, got 'abc'"),
        ("float size", "hidden_size must be an integer, got 2.5"),
        ("boolean size", "num_layers must be an integer, got True"),
        ("no model", "no 'model' object"),
        ("no tokenizer", "no 'tokenizer' object"),
        ("string version", "format_version must be a whole number.*got '1'"),
        ("vocab of numbers", "tokenizer is damaged"),
        ("bad bpe", "bpe tokenizer is damaged"),
        ("huge model", "not enough memory"),
    ],
)
def test_damaged_checkpoints_get_a_clear_error(tmp_path, how: str, message: str) -> None:
    path = damage(tmp_path, how)
    with pytest.raises(NextcharError, match=message) as error:
        load(path, device="cpu")
    assert "\n" not in str(error.value)


def test_recover_finishes_an_interrupted_save_and_drops_orphans(tmp_path) -> None:
    from nextchar.models.checkpoint import recover

    model, tok = make()
    save_checkpoint(tmp_path / "last", model, tok)
    os.rename(tmp_path / "last", tmp_path / "last.old")  # killed between the two renames
    (tmp_path / ".last.x1y2.tmp").mkdir()  # killed while writing the next one
    (tmp_path / ".last.x1y2.tmp" / "model.safetensors").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_text("the user's, not ours")
    recover(tmp_path / "last")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "notes.tmp"]
    loaded, _ = load(tmp_path / "last", device="cpu")
    assert torch.equal(logits(loaded, tok), logits(model, tok))


def test_missing_file_and_foreign_directories(tmp_path) -> None:
    with pytest.raises(NextcharError, match="does not exist"):
        load(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(NextcharError, match="not a nextchar checkpoint or run directory"):
        load(tmp_path / "plain")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NextcharError, match="is a file"):
        load(tmp_path / "file.txt")
