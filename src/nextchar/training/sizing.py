"""Sizing the model to the machine and the budget. A time budget with no shape flags picks,
at start, the candidate shape that the measured table says reaches the lowest bits per
character in the characters this machine can train in that time: a few short timed steps of
each candidate give its speed here, the table (sizing.json, remade by bench/sizing.py) its
bits per character after that many training characters. The warm-up is sized to the steps
the budget will give, whatever the shape."""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nextchar.core.config import ModelConfig, TrainConfig
from nextchar.core.optim import AdamW
from nextchar.core.options import flag
from nextchar.core.runtime import cpu_cores, seed_everything, user_threads
from nextchar.models import build_model

TABLE = Path(__file__).with_name("sizing.json")
# Of the budget left at the start, the share its steps get: evaluations, saves and the end
# take the rest (bench/budgets.py). The same for every candidate, so it sets the warm-up,
# not the choice.
TRAIN_SHARE = 0.85
PROBE_LEN = 16  # characters per window of a timed step: a quarter of a training window
PROBE_STEPS = 2  # timed, after one untimed step (allocation, first-call costs)
WARMUP_SHARE = 10  # the warm-up is at most a tenth of the run's steps
# Past the table's last point a curve keeps this share of its last slope: gru 2x192 trained
# 8 minutes (14.4 M characters) measured 2.023 bpc where the full slope said 1.92 and half
# of it 2.00 (bench/RESULTS.md, "Sizing").
BEYOND = 0.5
# The fields a candidate sets: a run given any of them keeps the shape it was given.
SHAPE_FIELDS = (
    "cell", "hidden_size", "num_layers", "embedding_dim", "input", "proj_size", "tie_weights",
    "batch_size", "seq_len",
)  # fmt: skip


def warmup_for(config: TrainConfig, steps: int) -> int:
    """The warm-up of a run of `steps` steps: `warmup_steps`, but at most a tenth of the run,
    so a short run spends most of its steps at the full learning rate."""
    return min(config.warmup_steps, max(1, steps // WARMUP_SHARE))


def sizes_itself(model_flags: dict[str, Any], train_flags: dict[str, Any]) -> bool:
    """Whether a run given these flags explicitly is sized to the machine: a character-level
    recurrent run with a time budget and no shape flag."""
    timed = "max_time" in train_flags and "max_steps" not in train_flags
    plain = model_flags.get("kind", "recurrent") == "recurrent"
    chars = train_flags.get("tokenizer", "char") == "char"
    given = set(model_flags) | set(train_flags)
    return timed and plain and chars and not given & set(SHAPE_FIELDS)


@dataclass(frozen=True)
class Candidate:
    model: dict[str, Any]  # RecurrentConfig fields
    train: dict[str, Any]  # TrainConfig fields (batch and window)
    points: tuple[tuple[float, float], ...]  # (training characters, val bpc), by characters

    def name(self) -> str:
        m, t = self.model, self.train
        return f"{m['cell']} {m['num_layers']}x{m['hidden_size']} b{t['batch_size']}"

    def bpc_at(self, chars: float) -> float:
        """Bits per character after `chars` training characters: the table's points joined
        by straight lines in log(characters), the first segment extended below them and the
        last above them at BEYOND times its slope (the curves flatten)."""
        xs = [math.log(c) for c, _ in self.points]
        ys = [b for _, b in self.points]
        if len(xs) == 1:
            return ys[0]
        x = math.log(max(chars, 1.0))
        i = min(max(bisect.bisect_left(xs, x), 1), len(xs) - 1)
        slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
        if x > xs[-1]:
            return ys[-1] + BEYOND * slope * (x - xs[-1])
        return ys[i - 1] + slope * (x - xs[i - 1])


def candidates(path: Path | None = None) -> list[Candidate]:
    data = json.loads((path or TABLE).read_text(encoding="utf-8"))
    return [
        Candidate(c["model"], c["train"], tuple(sorted(map(tuple, c["points"]))))
        for c in data["candidates"]
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_speed(
    model_config: ModelConfig,
    config: TrainConfig,
    ids: torch.Tensor,
    device: torch.device,
    give_up: float | None = None,
) -> float:
    """Training characters per second of this shape here: PROBE_STEPS timed steps on windows
    of PROBE_LEN (a step's cost is per character: the windows only shorten the probe); a
    step slower than `give_up` seconds ends the probe there."""
    seed_everything(config.seed)
    model = build_model(model_config).to(device)
    optimizer = AdamW(model.parameters(), lr=config.lr)
    b = config.batch_size
    x = ids[: b * PROBE_LEN].view(b, PROBE_LEN).to(device)
    y = ids[1 : b * PROBE_LEN + 1].view(b, PROBE_LEN).to(device)
    times: list[float] = []
    for _ in range(PROBE_STEPS + 1):
        started = time.perf_counter()
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        times.append(time.perf_counter() - started)
        if give_up is not None and times[-1] > give_up:
            break
    return b * PROBE_LEN / min(times[1:] or times)


def best_speed(
    model_config: ModelConfig, config: TrainConfig, ids: torch.Tensor, device: torch.device
) -> tuple[float, int]:
    """(characters/s, threads) of a shape at the thread count training would settle on: the
    user's, else the faster of one thread and all cores (the thread tuner's two ends). A
    count whose step is twice as slow as one thread's (a busy neighbour) is not timed on."""
    if device.type != "cpu":
        return step_speed(model_config, config, ids, device), torch.get_num_threads()
    fixed = user_threads(config.threads)
    previous = torch.get_num_threads()
    best = (0.0, 1)
    try:
        for n in [fixed] if fixed else sorted({1, cpu_cores()}):
            torch.set_num_threads(n)
            limit = 2 * config.batch_size * PROBE_LEN / best[0] if best[0] else None
            best = max(best, (step_speed(model_config, config, ids, device, limit), n))
    finally:
        torch.set_num_threads(previous)
    return best


def size_to_budget(
    model_config: ModelConfig,
    config: TrainConfig,
    train_ids: torch.Tensor,
    device: torch.device,
    seconds_left: float,
    log: Any,
    choose: bool,
) -> tuple[ModelConfig, TrainConfig]:
    """For a time-budgeted run: with `choose`, the candidate shape the table says is best for
    this budget on this machine, said in one line; and the warm-up sized to the steps the
    budget gives."""
    shapes = candidates() if choose else []
    pool = [
        (c, dataclasses.replace(model_config, **c.model), dataclasses.replace(config, **c.train))
        for c in shapes
    ] or [(None, model_config, config)]
    needed = max(t.batch_size for _, _, t in pool) * PROBE_LEN + 1
    if train_ids.numel() < needed:  # a text too small to time on: nothing to size
        return model_config, config
    ids = train_ids[:needed].long()
    measured = [best_speed(m, t, ids, device) for _, m, t in pool]
    usable = max(0.0, seconds_left) * TRAIN_SHARE
    scored = [
        (c.bpc_at(speed * usable) if c else 0.0, speed, threads, c, m, t)
        for (speed, threads), (c, m, t) in zip(measured, pool, strict=True)
    ]
    bpc, speed, threads, best, model_config, config = min(scored, key=lambda row: row[0])
    steps = int(speed * usable / (config.batch_size * config.seq_len))
    config = dataclasses.replace(config, warmup_steps=warmup_for(config, steps))
    if best is not None:
        others = ", ".join(f"{c.name()} {b:.2f}" for b, _, _, c, _, _ in scored if c is not best)
        log(
            f"sized to this machine and {seconds_left:.0f} s: {best.name()}, "
            f"{speed:,.0f} characters/s here on {threads} thread(s), about "
            f"{speed * usable / 1e6:.1f} M characters -> {bpc:.2f} bits per character on "
            f"Shakespeare in bench/sizing.py's table ({others}); warm-up "
            f"{config.warmup_steps} steps; "
            f"{flag('hidden_size')} and the other shape flags fix the shape"
        )
    return model_config, config
