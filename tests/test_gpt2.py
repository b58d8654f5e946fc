"""GPT-2 behind the same interface, without network: a tiny random GPT-2 and a byte-level BPE
trained on the fly are written with save_pretrained and loaded through the real code path."""

import json
import math
import sys

import pytest
import torch
import torch.nn.functional as F

from nextchar import NextcharError
from nextchar.core.commands import SampleConfig
from nextchar.core.config import model_config
from nextchar.inference.evaluate import evaluate_text
from nextchar.inference.generate import generate_ids, predict_next
from nextchar.models import load, load_tokenizer
from nextchar.text.tokenizers import BPETokenizer, token_report, tokenizer_from_dict

transformers = pytest.importorskip("transformers")

TEXT = (
    "Seoul is the capital of South Korea. The king of France is in Paris.\n"
    "서울은 대한민국의 수도이다. To be, or not to be: that is the question.\n"
) * 20
CONTEXT = 24


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tiny-gpt2")
    bpe = BPETokenizer.train(TEXT, vocab_size=300)
    hf_tokenizer = transformers.GPT2TokenizerFast(
        tokenizer_object=bpe.backend,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=bpe.vocab_size, n_positions=CONTEXT, n_embd=16, n_layer=2, n_head=2
    )
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    hf_tokenizer.save_pretrained(path)
    return str(path)


def test_bpe_round_trips_any_text_and_its_json() -> None:
    bpe = BPETokenizer.train(TEXT, vocab_size=300)
    for text in (TEXT, "unseen: ñandú 👩‍👩‍👧 한국어", ""):
        assert bpe.decode(bpe.encode(text)) == text
    again = tokenizer_from_dict(json.loads(json.dumps(bpe.to_dict())))
    assert again.encode(TEXT) == bpe.encode(TEXT)
    ids = bpe.encode("서울은 👩‍👩‍👧")
    stream = bpe.stream_decoder()
    pieces = [stream.feed(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == "서울은 👩‍👩‍👧"
    assert all("\ufffd" not in p for p in pieces)  # never half a character on screen


def test_bpe_ids_equal_encoding_the_whole_text_at_once() -> None:
    bpe = BPETokenizer.train(TEXT, vocab_size=300)
    # whitespace around newlines is where cutting the text into lines would change the ids
    tricky = "king  \n  queen\n\nthe\n x \n\n  y\nz" * 3 + TEXT
    assert bpe.encode(tricky) == bpe.backend.encode(tricky, add_special_tokens=False).ids


def test_bpe_shows_byte_pieces_readably() -> None:
    bpe = BPETokenizer.train("abc abc abc\n", vocab_size=260)
    ids = bpe.encode("한")  # three UTF-8 bytes, no merges for them
    assert [bpe.token_text(i) for i in ids] == ["<0xED>", "<0x95>", "<0x9C>"]
    assert all(bpe.is_partial(i) for i in ids)
    assert bpe.token_text(bpe.encode(" abc")[0]).startswith(" ")


def test_loads_a_save_pretrained_directory(tiny_gpt2: str) -> None:
    model, tokenizer = load(tiny_gpt2, "cpu")
    assert model.context_size == CONTEXT
    assert isinstance(tokenizer, BPETokenizer)
    assert load_tokenizer(tiny_gpt2).encode(TEXT) == tokenizer.encode(TEXT)


def test_cached_incremental_steps_equal_a_full_forward(tiny_gpt2: str) -> None:
    model, tokenizer = load(tiny_gpt2, "cpu")
    ids = torch.tensor([tokenizer.encode(TEXT)[:CONTEXT]])
    with torch.no_grad():
        full, _ = model(ids)
        logits, state = model(ids[:, :5])
        steps = [logits]
        for t in range(5, ids.shape[1]):
            logits, state = model(ids[:, t : t + 1], state)
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_eval_bits_per_character_equals_a_hand_computation(tiny_gpt2: str) -> None:
    model, tokenizer = load(tiny_gpt2, "cpu")
    text = TEXT[:400]
    ids = torch.tensor(tokenizer.encode(text))
    assert ids.numel() > 3 * CONTEXT  # several windows
    stride = 8
    result = evaluate_text(model, tokenizer, text, stride=stride)
    # by hand: token t (t >= 1) is predicted from the window that ends right after it,
    # starting at the largest multiple of the stride that keeps the window within the context
    nll = 0.0
    with torch.no_grad():
        for t in range(1, ids.numel()):
            begin = 0
            while begin + CONTEXT < t + 1:
                begin += stride
            # a later window never re-scores a token, so the first window covering t wins
            logits, _ = model(ids[begin:t].unsqueeze(0))
            nll += F.cross_entropy(logits[0, -1:], ids[t : t + 1], reduction="sum").item()
    assert result.tokens == ids.numel() - 1
    assert result.nll == pytest.approx(nll, rel=1e-4)
    assert result.bits_per_char == pytest.approx(nll / (len(text) - 1) / math.log(2), rel=1e-4)


def test_sampling_past_the_context_keeps_going(tiny_gpt2: str) -> None:
    model, tokenizer = load(tiny_gpt2, "cpu")
    prime = tokenizer.encode("Seoul is")
    config = SampleConfig(length=3 * CONTEXT, seed=1)
    first = list(generate_ids(model, prime, config, torch.Generator().manual_seed(1)))
    again = list(generate_ids(model, prime, config, torch.Generator().manual_seed(1)))
    assert len(first) == 3 * CONTEXT and first == again
    greedy = list(generate_ids(model, prime, SampleConfig(length=4, greedy=True)))
    with torch.no_grad():
        logits, _ = model(torch.tensor([prime]))
    assert greedy[0] == int(logits[0, -1].argmax())


def test_predict_lists_tokens_with_probabilities(tiny_gpt2: str) -> None:
    model, tokenizer = load(tiny_gpt2, "cpu")
    prediction = predict_next(model, tokenizer, "Seoul is the capital of", k=5)
    assert len(prediction.candidates) == 5
    probs = [p for _, p in prediction.candidates]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1


def test_token_report_warns_on_korean_with_an_english_bpe() -> None:
    english = BPETokenizer.train("the king of france and the queen\n" * 50, vocab_size=280)
    report = token_report(english, "서울은 대한민국의 수도이다")
    assert report.tokens_per_char > 2
    assert report.partial > 0
    assert any("tokens per character" in w for w in report.warnings())
    fit = token_report(english, "the king of france")
    assert fit.tokens_per_char < 1 and not fit.warnings()


# ----------------------------------------------------------------------------- CLI


def test_cli_predict_sample_eval_tokens_on_a_local_gpt2(tiny_gpt2: str, cli, tmp_path) -> None:
    env = {"HF_HUB_OFFLINE": "1"}
    predicted = cli("predict", tiny_gpt2, "Seoul is the capital of", "--top-k", "3", env=env)
    assert predicted.returncode == 0, predicted.stderr
    assert "over 300 tokens" in predicted.stdout
    assert len(predicted.stdout.splitlines()) == 4

    sampled = cli("sample", tiny_gpt2, "--prime", "Seoul", "--length", "30", env=env)
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("Seoul")

    (tmp_path / "t.txt").write_text(TEXT[:300])
    evaluated = cli("eval", tiny_gpt2, str(tmp_path / "t.txt"), "--json", env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    row = json.loads(evaluated.stdout)
    assert row["unit"] == "token" and row["chars"] == 299
    assert row["bits_per_char"] == pytest.approx(row["nll_nats"] / 299 / math.log(2))

    (tmp_path / "english.txt").write_text("The king of France is in Paris.\n" * 5)
    report = cli("tokens", tiny_gpt2, str(tmp_path / "english.txt"), str(tmp_path / "t.txt"))
    assert report.returncode == 0, report.stderr
    english, mixed = report.stdout.split(str(tmp_path / "t.txt"))
    assert "vocabulary        300 tokens" in english
    assert "warning" not in english  # the BPE learned these words
    assert "pieces of a character" in mixed  # Korean: 300 tokens hold few Hangul merges


def test_offline_without_weights_is_one_clear_error(cli, tmp_path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-cache")}
    result = cli("predict", "gpt2", "Seoul is the capital of", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "cannot load 'gpt2' as GPT-2" in lines[0] and "HF_HUB_OFFLINE" in lines[0]
    assert "hf download" in lines[0] and "docs/gpt2.md" in lines[0]  # how to get it


def _damage(path, how: str) -> None:
    weights, config = path / "model.safetensors", path / "config.json"
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:200])
    elif how == "edited sizes":
        config.write_text(json.dumps({**json.loads(config.read_text()), "n_embd": 32}))
    elif how == "a bert":
        config.write_text(json.dumps({**json.loads(config.read_text()), "model_type": "bert"}))
    elif how == "no tokenizer":
        for name in ("tokenizer.json", "vocab.json", "merges.txt"):
            (path / name).unlink(missing_ok=True)
    elif how == "a refused pickle":
        weights.unlink()

        class Payload:
            def __reduce__(self):
                return (print, ("this would have run",))

        torch.save({"transformer.wte.weight": Payload()}, path / "pytorch_model.bin")
    elif how == "nan weights":
        from safetensors.torch import load_file, save_file

        state = load_file(str(weights))
        state["transformer.ln_f.weight"][0] = float("nan")
        save_file(state, str(weights), metadata={"format": "pt"})


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated weights", "files are damaged, incomplete or refused"),
        ("edited sizes", "files are damaged, incomplete or refused"),
        ("a bert", "holds a 'bert' model; nextchar runs GPT-2 models"),
        ("no tokenizer", "has no tokenizer .*save_pretrained"),
        ("a refused pickle", "files are damaged, incomplete or refused"),
        ("nan weights", "NaN or infinity"),
    ],
)
def test_a_damaged_gpt2_directory_is_one_line(tiny_gpt2, tmp_path, capsys, how, message):
    import re
    import shutil

    from nextchar.cli import main

    path = tmp_path / "model"
    shutil.copytree(tiny_gpt2, path)
    _damage(path, how)
    assert main(["predict", str(path), "Seoul is", "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "this would have run" not in out + err, err
    assert re.search(message, err), err


def test_without_transformers_the_error_says_how_to_install(cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    result = cli("predict", "gpt2", "hello")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert 'pip install "nextchar[gpt2]"' in result.stderr


def test_a_missing_run_directory_is_still_named(cli, tmp_path) -> None:
    (tmp_path / "runs").mkdir()
    result = cli("predict", "runs/typo", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert "no checkpoint at runs/typo" in result.stderr


def test_load_rejects_a_model_name_offline_without_hanging(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(NextcharError, match="cannot load 'distilgpt2' as GPT-2"):
        load("distilgpt2", "cpu")


def test_a_gpt2_directory_with_foreign_weights_is_refused(tiny_gpt2: str, tmp_path) -> None:
    import shutil

    from safetensors.torch import save_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_gpt2, broken)
    save_file({"rnn.weight": torch.zeros(2, 2)}, str(broken / "model.safetensors"))
    with pytest.raises(NextcharError, match="do not fit a GPT-2"):
        load(broken, "cpu")


# ----------------------------------------------------------------------------- training


def gpt2_config(**kw):

    base = dict(kind="gpt2", n_layer=1, n_head=2, n_embd=16, block_size=16)
    return model_config(**{**base, **kw})


def train_config(tmp_path, **kw):
    from nextchar.core.config import TrainConfig

    (tmp_path / "train.txt").write_text(TEXT)
    base = dict(
        files=(str(tmp_path / "train.txt"),),
        batch_size=4,
        seq_len=16,
        max_steps=30,
        eval_every=15,
        warmup_steps=0,
        lr=3e-3,
    )
    return TrainConfig(**{**base, **kw})


def test_gpt2_from_scratch_with_a_bpe_learns_and_reloads(tmp_path) -> None:
    from nextchar.models import load_checkpoint
    from nextchar.training.loop import train

    config = train_config(tmp_path, tokenizer="bpe", bpe_vocab=300, log_every=1)
    result = train(gpt2_config(), config, tmp_path / "run", progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0] - 0.5  # it learns
    ckpt = load_checkpoint(tmp_path / "run", "cpu")
    assert isinstance(ckpt.tokenizer, BPETokenizer) and ckpt.tokenizer.vocab_size == 300
    assert ckpt.model.context_size == 16
    again = evaluate_text(ckpt.model, ckpt.tokenizer, TEXT[: len(TEXT) // 10])
    assert math.isfinite(again.bits_per_char) and result.final_val_bpc > 0


def test_gpt2_resume_matches_an_uninterrupted_run(tmp_path) -> None:
    from nextchar.training.loop import train

    config = train_config(tmp_path, tokenizer="char", max_steps=12, eval_every=6)
    mc = gpt2_config(dropout=0.1)
    train(mc, config, tmp_path / "whole", progress=False)
    train(mc, config, tmp_path / "cut", progress=False, should_stop=lambda step: step == 5)
    train(mc, config, tmp_path / "cut", resume=True, progress=False)

    def losses(run: str) -> list[float]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [r["loss"] for r in map(json.loads, lines) if "loss" in r]

    assert losses("whole") == losses("cut")


def test_fine_tuning_a_pretrained_gpt2_lowers_its_loss(tiny_gpt2: str, tmp_path) -> None:
    from nextchar.models import load_checkpoint
    from nextchar.training.loop import train

    text = TEXT[:600]
    base_model, base_tokenizer = load(tiny_gpt2, "cpu")
    before = evaluate_text(base_model, base_tokenizer, text).bits_per_char
    lines: list[str] = []
    config = train_config(tmp_path, max_steps=40, eval_every=20, seq_len=CONTEXT)
    train(gpt2_config(init=tiny_gpt2), config, tmp_path / "ft", progress=False, log=lines.append)
    assert lines and "fine-tuning" in lines[0]
    tuned = load_checkpoint(tmp_path / "ft", "cpu")
    assert tuned.meta["model"]["n_embd"] == 16 and tuned.meta["model"]["block_size"] == CONTEXT
    assert tuned.tokenizer.encode(text) == base_tokenizer.encode(text)
    after = evaluate_text(tuned.model, tuned.tokenizer, text).bits_per_char
    assert after < before - 0.5


def test_gpt2_options_that_cannot_work_are_refused(tmp_path) -> None:
    from nextchar.training.loop import train

    with pytest.raises(NextcharError, match="longer than the model's context"):
        train(gpt2_config(), train_config(tmp_path, seq_len=32), tmp_path / "a", progress=False)
    with pytest.raises(NextcharError, match="multiple of n_head"):
        gpt2_config(n_embd=30, n_head=4)
    with pytest.raises(NextcharError, match="add model='gpt2'"):
        model_config(init="gpt2")


def test_cli_trains_gpt2_and_compares_it_with_a_recurrent_model(cli, tmp_path) -> None:
    (tmp_path / "train.txt").write_text(TEXT)
    (tmp_path / "val.txt").write_text(TEXT[:500])
    common = ["--max-steps", "8", "--eval-every", "4", "--batch-size", "4", "--quiet"]
    gpt = cli(
        "train", "train.txt", "--model", "gpt2", "--tokenizer", "bpe", "--vocab-size", "300",
        "--n-layer", "1", "--n-embd", "16", "--block-size", "16", "--seq-len", "16",
        "--out", "gpt", *common, cwd=tmp_path,
    )  # fmt: skip
    assert gpt.returncode == 0, gpt.stderr
    assert "per token" in gpt.stdout
    rnn = cli(
        "train", "train.txt", "--hidden-size", "16", "--num-layers", "1", "--seq-len", "16",
        "--out", "rnn", *common, cwd=tmp_path,
    )  # fmt: skip
    assert rnn.returncode == 0, rnn.stderr
    compared = cli("compare", "val.txt", "gpt", "rnn", "--out", "c.png", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    rows = [line for line in compared.stdout.splitlines() if line.startswith("| gpt") or
            line.startswith("| rnn")]  # fmt: skip
    assert len(rows) == 2
    assert "gpt2 1L" in compared.stdout and "gru 1x16" in compared.stdout
    assert (tmp_path / "c.png").stat().st_size > 1000
    as_json = cli("compare", "val.txt", "gpt", "rnn", "--json", "--out", "d.png", cwd=tmp_path)
    values = [json.loads(line) for line in as_json.stdout.splitlines()]
    ours = {v["model"]: v for v in values}
    single = cli("eval", "rnn", "val.txt", "--json", cwd=tmp_path)
    assert ours["rnn"]["bits_per_char"] == pytest.approx(json.loads(single.stdout)["bits_per_char"])


def test_beam_search_continues_by_the_requested_length(tiny_gpt2: str) -> None:
    from nextchar.inference.generate import sample

    model, tokenizer = load(tiny_gpt2, "cpu")
    config = SampleConfig(length=6, num_beams=3, repetition_penalty=1.3)
    first = sample(model, tokenizer, "Seoul is", config)
    assert first == sample(model, tokenizer, "Seoul is", config)  # deterministic
    new_ids = model.beam_search(tokenizer.encode("Seoul is"), config)
    assert len(new_ids) == 6 and tokenizer.decode(new_ids) == first[0]


def test_neighbours_read_gpt2_token_embeddings(tiny_gpt2: str) -> None:
    from nextchar.text.embeddings import nearest

    model, tokenizer = load(tiny_gpt2, "cpu")
    token = tokenizer.token_text(tokenizer.encode(" king")[0])
    result = nearest(model, tokenizer, token, k=3)
    wte = model.hf.get_input_embeddings().weight.detach()
    unit = F.normalize(wte, dim=1)
    scores = unit @ unit[tokenizer.encode(token)[0]]
    expected = float(scores.topk(2).values[1])  # the best other than the token itself
    assert result.neighbours[0][1] == pytest.approx(expected, abs=1e-6)


@pytest.mark.cuda
def test_gpt2_on_cuda_trains_in_bf16_and_caches_like_a_full_forward(tmp_path) -> None:
    from nextchar.training.loop import train

    model = model_config(kind="gpt2", n_layer=2, n_head=2, n_embd=32, block_size=32)
    cfg = train_config(
        tmp_path,
        batch_size=8,
        seq_len=32,
        max_steps=120,
        eval_every=60,
        warmup_steps=100,
        device="cuda",
        precision="bf16",
    )
    result = train(model, cfg, tmp_path / "run", progress=False)
    assert result.final_val_bpc < 3.0  # from log2(V) = 4.7 bits
    gpu, tok = load(tmp_path / "run", "cuda")
    ids = torch.tensor([tok.encode(TEXT[:200])[:20]], device="cuda")
    with torch.no_grad():
        full, _ = gpu(ids)
        steps, state = [], None
        for t in range(ids.shape[1]):
            logits, state = gpu(ids[:, t : t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-4, rtol=1e-4)


def test_pretrained_on_disk_asks_no_server(tiny_gpt2, tmp_path) -> None:
    from nextchar.models.gpt2 import pretrained_on_disk

    assert pretrained_on_disk(tiny_gpt2)
    assert not pretrained_on_disk(str(tmp_path))  # a directory without config.json
    assert not pretrained_on_disk("gpt2", cache_dir=tmp_path)  # an empty cache
    repo = tmp_path / "models--someone--tiny"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text("{}")
    assert not pretrained_on_disk("someone/tiny", cache_dir=tmp_path)  # no weights yet
    (snapshot / "model.safetensors").write_bytes(b"")
    assert pretrained_on_disk("someone/tiny", cache_dir=tmp_path)
