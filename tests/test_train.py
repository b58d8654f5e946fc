import dataclasses
import importlib
import json
import math

import pytest
import torch

from conftest import TINY as TINY_SIZES
from nextchar import NextcharError
from nextchar.core.config import TrainConfig, model_config
from nextchar.core.runtime import cpu_bf16_supported
from nextchar.inference.evaluate import evaluate_text
from nextchar.models import load
from nextchar.text.data import split_text
from nextchar.training.loop import lr_at, train

TINY = model_config(cell="lstm", **TINY_SIZES)


def corpus(tmp_path, text: str, name: str = "corpus.txt") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def config(files, **overrides) -> TrainConfig:
    base = dict(
        files=(files,),
        batch_size=4,
        seq_len=16,
        max_steps=30,
        eval_every=10,
        log_every=1,
        warmup_steps=5,
        device="cpu",
        eval_tokens=None,
    )
    return TrainConfig(**{**base, **overrides})


def losses(run_dir) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_a_tiny_model_learns_a_repetitive_text(tmp_path) -> None:
    path = corpus(tmp_path, "the cat sat on the mat. " * 200)
    model = model_config(cell="lstm", hidden_size=32, embedding_dim=16)
    cfg = config(path, max_steps=300, lr=1e-2, eval_every=100, batch_size=8, seq_len=32)
    result = train(model, cfg, tmp_path / "run", progress=False)
    assert result.final_val_bpc < 0.05  # near-zero loss: the text is fully predictable
    assert losses(tmp_path / "run")[-1][1] < 0.05
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows if "val_bpc" in r] == [100, 200, 300]  # each once
    for name in ("best", "last", "metrics.jsonl", "curves.png"):
        assert (tmp_path / "run" / name).exists()
    model, tok = load(tmp_path / "run", device="cpu")
    assert evaluate_text(model, tok, "the cat sat on the mat. " * 4).bits_per_char < 0.2


@pytest.mark.parametrize("cell", ["lstm", "mingru", "minlstm"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, cell: str) -> None:
    text = "".join(f"line {i}: {'abcde'[i % 5] * (i % 7)} end\n" for i in range(400))
    path = corpus(tmp_path, text)
    model = model_config(
        cell=cell, hidden_size=16, embedding_dim=8, num_layers=2, dropout=0.2
    )  # dropout: the RNG state must resume too; the carried state too (any cell's layout)
    cfg = config(path, max_steps=24, eval_every=8)
    train(model, cfg, tmp_path / "whole", progress=False)
    stopped = train(
        model, cfg, tmp_path / "split", progress=False, should_stop=lambda step: step == 11
    )
    assert stopped.interrupted and stopped.step == 11
    resumed = train(model, cfg, tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 24 and not resumed.interrupted
    whole, split = losses(tmp_path / "whole"), losses(tmp_path / "split")
    assert [s for s, _ in split] == list(range(1, 25))
    assert split == whole  # identical floats, step by step


def test_same_seed_same_losses_other_seed_other_losses(tmp_path) -> None:
    path = corpus(tmp_path, "abcdefghij" * 100)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(TINY, config(path, max_steps=8, seed=seed), tmp_path / name, progress=False)
    assert losses(tmp_path / "a") == losses(tmp_path / "b") != losses(tmp_path / "c")


def test_random_window_batching_trains_too(tmp_path) -> None:
    path = corpus(tmp_path, "abcdefghij" * 100)
    result = train(
        TINY,
        config(path, batching="random", max_steps=60, lr=1e-2),
        tmp_path / "run",
        progress=False,
    )
    assert result.final_val_bpc < 1.0


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg, 0) == pytest.approx(0.1)
    assert lr_at(9, cfg, 0) == pytest.approx(1.0)
    assert lr_at(10, cfg, 0) == pytest.approx(1.0)
    assert lr_at(60, cfg, 0) == pytest.approx(0.55)  # half way down the cosine
    assert lr_at(110, cfg, 0) == pytest.approx(0.1)
    by_time = TrainConfig(lr=1.0, warmup_steps=0, max_steps=None, max_time=10)
    assert lr_at(5, by_time, 0.5) == pytest.approx(0.05 + 0.5 * 0.95)  # time-based progress
    step = TrainConfig(lr=1.0, warmup_steps=0, schedule="step", step_every=10, step_gamma=0.5)
    assert [lr_at(s, step, 0) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_at(1000, TrainConfig(warmup_steps=0, schedule="constant", lr=0.3), 0) == 0.3
    assert not math.isnan(lr_at(0, TrainConfig(warmup_steps=0), 0))


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("", {}, "empty"),
        ("aaaaaaaaaaaaaaaaaaaaaaa", {}, "single distinct character"),
        ("abcdefgh" * 10, {"seq_len": 500}, "too few for batches"),
    ],
)
def test_bad_training_input(tmp_path, text: str, overrides: dict, message: str) -> None:
    path = corpus(tmp_path, text)
    with pytest.raises(NextcharError, match=message):
        train(TINY, config(path, **overrides), tmp_path / "run", progress=False)


def test_an_existing_run_is_not_overwritten(tmp_path) -> None:
    path = corpus(tmp_path, "abcdefghij" * 100)
    train(TINY, config(path, max_steps=5), tmp_path / "run", progress=False)
    with pytest.raises(NextcharError, match="resume="):
        train(TINY, config(path, max_steps=5), tmp_path / "run", progress=False)


def test_resume_refuses_changed_data(tmp_path) -> None:
    path = corpus(tmp_path, "abcdefghij" * 100)
    cfg = config(path, max_steps=10)
    train(TINY, cfg, tmp_path / "run", progress=False, should_stop=lambda s: s == 5)
    corpus(tmp_path, "jihgfedcba" + "abcdefghij" * 99)
    with pytest.raises(NextcharError, match="text differs"):
        train(TINY, cfg, tmp_path / "run", resume=True, progress=False)


def test_budget_is_required() -> None:
    with pytest.raises(NextcharError, match="budget"):
        TrainConfig(max_steps=None, max_time=None)


def test_time_budget_stops_the_run(tmp_path) -> None:
    path = corpus(tmp_path, "abcdefghij" * 100)
    result = train(
        TINY,
        config(path, max_steps=None, max_time=0.5, eval_every=10**6),
        tmp_path / "run",
        progress=False,
    )
    assert result.step >= 1 and not result.interrupted
    assert (tmp_path / "run" / "best").exists() and (tmp_path / "run" / "last").exists()
    assert torch.isfinite(torch.tensor(result.final_val_bpc))


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_cuda(tmp_path, precision: str) -> None:
    path = corpus(tmp_path, "the cat sat on the mat. " * 200)
    model = model_config(cell="lstm", hidden_size=32, embedding_dim=16)
    cfg = config(
        path,
        max_steps=300,
        lr=1e-2,
        eval_every=100,
        batch_size=8,
        seq_len=32,
        device="cuda",
        precision=precision,
    )
    result = train(model, cfg, tmp_path / "run", progress=False)
    assert result.final_val_bpc < 0.2
    on_gpu, tok = load(tmp_path / "run", device="cuda")
    on_cpu, _ = load(tmp_path / "run", device="cpu")
    ids = torch.tensor([tok.encode("the cat sat")])
    with torch.no_grad():
        torch.testing.assert_close(
            on_gpu(ids.cuda())[0].cpu(), on_cpu(ids)[0], rtol=1e-3, atol=1e-3
        )


@pytest.mark.skipif(
    not cpu_bf16_supported(), reason="this CPU has no oneDNN bf16 kernels (AVX2 only)"
)
def test_bf16_autocast_on_the_cpu_trains_close_to_fp32(tmp_path) -> None:
    path = corpus(tmp_path, "the cat sat on the mat. " * 100)
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = config(path, lr=1e-2, device="cpu", precision=precision, eval_every=30)
        runs[precision] = train(TINY, cfg, tmp_path / precision, progress=False)
    a, b = ([v for _, v in losses(tmp_path / p)] for p in ("fp32", "bf16"))
    assert a != b  # bf16 really ran: its rounding changes the numbers
    assert b[-1] < b[0] - 0.3  # and it learns
    assert abs(runs["bf16"].final_val_bpc - runs["fp32"].final_val_bpc) < 0.15


@pytest.mark.slow
def test_compiled_training_computes_what_eager_training_computes(tmp_path) -> None:
    path = corpus(tmp_path, "the cat sat on the mat. " * 100)
    for compiled in (False, True):
        cfg = config(path, max_steps=12, device="cpu", compile=compiled)
        train(TINY, cfg, tmp_path / str(compiled), progress=False)
    eager, compiled_losses = losses(tmp_path / "False"), losses(tmp_path / "True")
    assert [s for s, _ in compiled_losses] == [s for s, _ in eager]
    assert [v for _, v in compiled_losses] == pytest.approx([v for _, v in eager], abs=1e-4)
    # the checkpoint holds the plain module's names, loadable without torch.compile
    model, _ = load(tmp_path / "True", device="cpu")
    assert not any("_orig_mod" in name for name in model.state_dict())


def test_auto_precision_follows_the_measurements(monkeypatch) -> None:
    import contextlib
    import warnings

    from nextchar.core.runtime import autocast_for
    from nextchar.models import build_model

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    recurrent = build_model(model_config(vocab_size=8, hidden_size=4, num_layers=1))
    gpt2 = build_model(model_config(vocab_size=8, kind="gpt2", n_layer=1, n_head=1, n_embd=8))
    # each model declares what `--precision auto` trains it in
    assert recurrent.preferred_precision(cpu) == gpt2.preferred_precision(cpu) == "fp32"
    assert isinstance(autocast_for("auto", cpu, recurrent.preferred_precision(cpu)),
                      contextlib.nullcontext)  # fmt: skip
    train_module = importlib.import_module("nextchar.core.runtime")
    monkeypatch.setattr(train_module, "cpu_bf16_supported", lambda: True)
    on_cpu = autocast_for("bf16", cpu)
    assert (on_cpu.device, on_cpu.fast_dtype) == ("cpu", torch.bfloat16)
    # an AVX2-only CPU: oneDNN cannot even build its bf16 LSTM; one line instead of a crash
    monkeypatch.setattr(train_module, "cpu_bf16_supported", lambda: False)
    with pytest.raises(NextcharError, match=r"AVX-512 or AMX.*precision='fp32'"):
        autocast_for("bf16", cpu)
    with pytest.raises(NextcharError, match="CUDA or the CPU, not mps"):
        autocast_for("bf16", torch.device("mps"))
    # on a bf16 GPU: GPT-2 prefers bf16, recurrent models keep fp32 (cuDNN's TF32 was faster)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert gpt2.preferred_precision(cuda) == "bf16"
    assert recurrent.preferred_precision(cuda) == "fp32"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no CUDA here: torch disables the context it builds
        auto = autocast_for("auto", cuda, gpt2.preferred_precision(cuda))
        forced = autocast_for("bf16", cuda, recurrent.preferred_precision(cuda))
    assert (auto.device, auto.fast_dtype) == ("cuda", torch.bfloat16)
    assert (forced.device, forced.fast_dtype) == ("cuda", torch.bfloat16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Old GPU")
    assert gpt2.preferred_precision(cuda) == "fp32"
    with pytest.raises(NextcharError, match="Old GPU"):
        autocast_for("bf16", cuda, gpt2.preferred_precision(cuda))


def test_periodic_evaluations_of_the_whole_text_need_no_final_one(tmp_path) -> None:
    path = corpus(tmp_path, "abcabcabd" * 200)
    result = train(TINY, config(path, max_steps=12, eval_every=4), tmp_path / "run", progress=False)
    # every evaluation scored all the validation text: the best of them is the final number
    assert result.final_val_tokens == result.val_tokens
    assert result.final_val_bpc == result.best_val_bpc


@pytest.mark.parametrize("best_is_last", [True, False])
def test_the_run_ends_with_one_evaluation_of_the_validation_text(
    tmp_path, monkeypatch, best_is_last
) -> None:
    import nextchar.training.loop as loop

    scored: list[tuple[int, int]] = []  # (step, tokens) of every evaluation
    real = loop.evaluate_ids

    def counting(model, ids, **kwargs):
        run_step = steps[-1] if steps else 0
        scored.append((run_step, ids.numel()))
        return real(model, ids, **kwargs)

    steps: list[int] = []
    real_step = loop.train_step

    def stepping(run, lr, autocast):
        loss = real_step(run, lr, autocast)
        steps.append(run.step)
        return loss

    monkeypatch.setattr(loop, "evaluate_ids", counting)
    monkeypatch.setattr(loop, "train_step", stepping)
    if not best_is_last:  # the last evaluation is worse: best/ is an earlier step's
        real_bpc, worse = loop.to_bpc, [True]

        def to_bpc(run, nll, n):  # the first score at step 20 is the periodic one
            bump = run.step == 20 and worse.pop() if worse else False
            return real_bpc(run, nll, n) + bump

        monkeypatch.setattr(loop, "to_bpc", to_bpc)
    text = "".join(f"line {i % 97} of the play\n" for i in range(400))
    cfg = config(corpus(tmp_path, text), max_steps=20, eval_every=10, eval_tokens=300)
    result = train(TINY, cfg, tmp_path / "run", progress=False)
    after_training = sum(n for step, n in scored if step == 20)
    # the stop evaluation scores the periodic slice, the final one only the text beyond it
    # (which starts from the slice's last token, given, not scored): each token once
    assert after_training == result.val_tokens + 1
    assert result.final_val_tokens == result.val_tokens
    model, tok = load(tmp_path / "run", device="cpu")  # best/
    assert json.loads((tmp_path / "run" / "best" / "config.json").read_text())["step"] == (
        20 if best_is_last else 10
    )
    whole = evaluate_text(model, tok, split_text(text, cfg.val_fraction)[1])
    assert abs(result.final_val_bpc - whole.bits_per_char) < 0.02  # one state reset apart


def test_a_final_evaluation_that_does_not_fit_the_budget_scores_a_prefix(
    tmp_path, monkeypatch
) -> None:
    import nextchar.training.budget as training

    monkeypatch.setattr(training, "FINAL_EVAL_SHARE", 1e-9)  # no room for the final eval
    path = corpus(tmp_path, "".join(f"line {i} of the play\n" for i in range(20000)))
    cfg = config(path, max_steps=None, max_time=2.0, eval_every=10**6, eval_tokens=64)
    result = train(TINY, cfg, tmp_path / "run", progress=False)
    assert result.val_tokens > training.PROBE_TOKENS
    assert result.final_val_tokens == training.PROBE_TOKENS  # the floor: a probe's worth
    assert math.isfinite(result.final_val_bpc)
    assert result.val_source is None  # a cut of the training text: no name to evaluate by
    assert "a larger max_time scores it all" in str(result)  # no file holds that text
    named = dataclasses.replace(result, val_source="shakespeare:val")
    assert f"nextchar eval {result.run_dir} shakespeare:val scores it all" in str(named)


def test_threads_flag_is_kept_and_recorded(tmp_path) -> None:
    path = corpus(tmp_path, "abcabcabd" * 200)
    before = torch.get_num_threads()
    train(TINY, config(path, max_steps=4, threads=1), tmp_path / "run", progress=False)
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert {r["threads"] for r in rows if "threads" in r} == {1}
    assert torch.get_num_threads() == before  # the process gets its count back
