"""Why LSTM exists: synthetic next-character tasks whose answer depends on a symbol D steps
back. A tanh RNN multiplies the gradient by its recurrent Jacobian at every step, so the
signal from far back fades; LSTM/GRU gates let it pass the cell state almost unchanged.

Tasks (one id per character; the loss is taken at the answer position only):
  remember  <symbol> <D distractors> ?        -> the symbol            chance 1/len(SYMBOLS)
  brackets  <opener> <D distractors>          -> the matching closer   chance 1/len(PAIRS)
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from nextchar.core.commands import FULL, LONG_RANGE_TASKS, QUICK, LongRangeConfig
from nextchar.core.config import model_config
from nextchar.core.errors import NextcharError
from nextchar.core.optim import Adam
from nextchar.core.options import flag
from nextchar.core.outputs import check_new, numbered, replacing
from nextchar.core.runtime import check_memory, pick_device
from nextchar.display.figures import figure, hangul_fonts
from nextchar.models import RecurrentLM, build_model
from nextchar.models.build import training_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SYMBOLS = "abcdefgh"
DISTRACTORS = "0123456789"
QUERY = "?"
PAIRS = ("()", "[]", "{}", "<>")
ALPHABET = "".join(sorted(set(SYMBOLS + DISTRACTORS + QUERY + "".join(PAIRS))))
STOI = {c: i for i, c in enumerate(ALPHABET)}
TASKS = LONG_RANGE_TASKS


def chance_level(task: str) -> float:
    """Accuracy of guessing uniformly among the possible answers."""
    return 1.0 / (len(SYMBOLS) if task == "remember" else len(PAIRS))


def make_batch(
    task: str, distance: int, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [B, T], answer ids [B]); the answer is predicted at the last position."""
    if task not in TASKS:
        raise NextcharError(f"unknown task {task!r}; choose {', '.join(TASKS)}")
    if distance < 1:
        raise NextcharError(f"distance must be >= 1, got {distance}")
    digits = torch.tensor([STOI[c] for c in DISTRACTORS])
    filler = digits[torch.randint(len(DISTRACTORS), (batch_size, distance), generator=generator)]
    if task == "remember":
        choice = torch.randint(len(SYMBOLS), (batch_size,), generator=generator)
        first = torch.tensor([STOI[c] for c in SYMBOLS])[choice]
        query = torch.full((batch_size, 1), STOI[QUERY])
        return torch.cat([first[:, None], filler, query], dim=1), first
    choice = torch.randint(len(PAIRS), (batch_size,), generator=generator)
    openers = torch.tensor([STOI[p[0]] for p in PAIRS])[choice]
    closers = torch.tensor([STOI[p[1]] for p in PAIRS])[choice]
    return torch.cat([openers[:, None], filler], dim=1), closers


def answer_logits(model: RecurrentLM, ids: torch.Tensor) -> torch.Tensor:
    logits, _ = model(ids)
    return logits[:, -1]  # [B, V]


def input_gradient_norms(
    model: RecurrentLM, ids: torch.Tensor, answers: torch.Tensor
) -> torch.Tensor:
    """||d loss(answer) / d input_t|| for every position t, averaged over the batch: [T]."""
    was_training = model.training
    model.eval()
    x = model.embed(ids).detach().requires_grad_(True)  # [B, T, H_in]
    logits, _ = model.forward_inputs(x)
    loss = F.cross_entropy(logits[:, -1], answers, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    model.train(was_training)
    return grad.norm(dim=-1).mean(dim=0).detach()  # [T]


def train_one(
    task: str, cell: str, distance: int, seed: int, config: LongRangeConfig, device: torch.device
) -> tuple[RecurrentLM, float]:
    """Train one model on one task and distance; return it and its answer accuracy."""
    torch.manual_seed(seed)
    model = build_model(
        model_config(
            vocab_size=len(ALPHABET),
            cell=cell,  # type: ignore[arg-type]
            hidden_size=config.hidden_size,
            num_layers=1,
            embedding_dim=16,
        )
    ).to(device)
    optimizer = Adam(model.parameters(), lr=config.lr)
    data = torch.Generator().manual_seed(seed * 7919 + distance)
    for _ in range(config.steps):
        ids, answers = make_batch(task, distance, config.batch_size, data)
        loss = F.cross_entropy(answer_logits(model, ids.to(device)), answers.to(device))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    held_out = torch.Generator().manual_seed(10**6 + seed)
    ids, answers = make_batch(task, distance, config.eval_size, held_out)
    with torch.no_grad():
        predicted = answer_logits(model.eval(), ids.to(device)).argmax(-1).cpu()
    return model, float((predicted == answers).float().mean())


@dataclass
class LongRangeResult:
    config: dict
    chance: dict[str, float]
    # accuracy[task][cell][str(distance)] = one value per seed
    accuracy: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    # gradients[task][cell]["trained"|"untrained"] = norm per distance from the answer (0 = last)
    gradients: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    seconds: float = 0.0


def check_fits(config: LongRangeConfig) -> None:
    """Refuse distances whose windows do not fit the memory, before anything is trained."""
    longest_window = max(config.distances) + 4  # the symbol, the distractors, the question
    biggest = model_config(
        vocab_size=len(ALPHABET), cell="lstm", hidden_size=config.hidden_size, num_layers=1,
        embedding_dim=16,
    )  # fmt: skip
    check_memory(
        f"the long-range experiment at D = {max(config.distances):,}",
        training_bytes(biggest, max(config.batch_size, config.eval_size), longest_window),
        ("distances", "hidden_size"),
    )


def run_long_range(
    config: LongRangeConfig = QUICK,
    on_result: Callable[[str, str, int, list[float]], None] | None = None,
) -> LongRangeResult:
    """Train every (task, cell, distance, seed); gradient norms at the longest distance."""
    check_fits(config)
    device = pick_device(config.device)
    result = LongRangeResult(
        config=asdict(config), chance={t: chance_level(t) for t in config.tasks}
    )
    start = time.perf_counter()
    longest = max(config.distances)
    for task in config.tasks:
        result.accuracy[task], result.gradients[task] = {}, {}
        for cell in config.cells:
            result.accuracy[task][cell] = {}
            for distance in config.distances:
                accs = []
                for seed in range(config.seeds):
                    model, acc = train_one(task, cell, distance, seed, config, device)
                    accs.append(acc)
                    if distance == longest and seed == 0:
                        result.gradients[task][cell] = _gradient_view(
                            task, cell, model, config, device
                        )
                result.accuracy[task][cell][str(distance)] = accs
                if on_result is not None:
                    on_result(task, cell, distance, accs)
    result.seconds = time.perf_counter() - start
    return result


def _gradient_view(
    task: str, cell: str, trained: RecurrentLM, config: LongRangeConfig, device: torch.device
) -> dict[str, list[float]]:
    distance = max(config.distances)
    ids, answers = make_batch(task, distance, 128, torch.Generator().manual_seed(4242))
    torch.manual_seed(0)
    untrained = build_model(trained.config).to(device)
    views = {}
    for name, model in (("trained", trained), ("untrained", untrained)):
        norms = input_gradient_norms(model, ids.to(device), answers.to(device)).cpu()
        views[name] = norms.flip(0).tolist()  # index = steps back from the answer position
    return views


def summary_table(result: LongRangeResult) -> str:
    """cell x distance -> mean accuracy ± spread (std over seeds), one block per task."""
    lines = []
    for task, per_cell in result.accuracy.items():
        distances = list(next(iter(per_cell.values())).keys())
        lines.append(
            f"{task}: accuracy at the answer (chance {result.chance[task]:.0%}), "
            f"mean ± std over {result.config['seeds']} seeds"
        )
        lines.append("cell    " + "".join(f"{'D=' + d:>13}" for d in distances))
        for cell, by_distance in per_cell.items():
            cells = []
            for d in distances:
                values = by_distance[d]
                spread = statistics.pstdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):>7.0%} ±{spread:>4.0%}")
            lines.append(f"{cell:<8}" + "".join(f"{c:>13}" for c in cells))
        lines.append("")
    return "\n".join(lines)


COLORS = {
    "rnn": "tab:red",
    "lstm": "tab:blue",
    "gru": "tab:green",
    "mingru": "tab:olive",
    "minlstm": "tab:purple",
}


OUTPUTS = ("results.json", "accuracy.png", "gradients.png")


def output_dir(config: LongRangeConfig) -> Path:
    """Where the results go: `out`, or runs/long-range numbered past folders holding results.
    Checked before training: nothing of the user's is replaced without `overwrite`."""

    def holds_results(folder: Path) -> bool:
        return any((folder / name).exists() for name in OUTPUTS)

    out = Path(config.out) if config.out else numbered(Path("runs/long-range"), holds_results)
    if out.exists() and not out.is_dir():
        raise NextcharError(f"{flag('out', out)} is a file; give a folder for the results")
    check_new([out / name for name in OUTPUTS], config.overwrite)
    return out


def write_outputs(result: LongRangeResult, out_dir: Path) -> list[Path]:
    """results.json, accuracy.png (accuracy vs distance) and gradients.png (log scale), each
    whole or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in OUTPUTS]
    with replacing(paths[0]) as tmp:
        tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
    for plot, path in ((_plot_accuracy, paths[1]), (_plot_gradients, paths[2])):
        with hangul_fonts(), replacing(path) as tmp:
            fig = plot(result)
            fig.tight_layout()
            fig.savefig(tmp)
    return paths


def _plot_accuracy(result: LongRangeResult) -> Figure:
    tasks = list(result.accuracy)
    fig = figure(figsize=(5.5 * len(tasks), 4), dpi=120)
    axes = fig.subplots(1, len(tasks), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for cell, by_distance in result.accuracy[task].items():
            ds = [int(d) for d in by_distance]
            means = [statistics.mean(v) for v in by_distance.values()]
            lows = [min(v) for v in by_distance.values()]
            highs = [max(v) for v in by_distance.values()]
            ax.plot(ds, means, "o-", color=COLORS.get(cell), label=cell)
            ax.fill_between(ds, lows, highs, color=COLORS.get(cell), alpha=0.15)
        ax.axhline(result.chance[task], color="gray", ls="--", label="chance")
        ax.set_xscale("log")
        ax.set_xticks(ds, [str(d) for d in ds])
        ax.minorticks_off()
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("distance D (steps between the clue and the answer)")
        ax.set_ylabel("accuracy at the answer")
        ax.set_title(f"{task}: same budget for every cell")
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def _plot_gradients(result: LongRangeResult) -> Figure:
    task = next(iter(result.accuracy))
    fig = figure(figsize=(6.5, 4), dpi=120)
    ax = fig.subplots()
    for cell, views in result.gradients[task].items():
        for name, style in (("trained", "-"), ("untrained", ":")):
            norms = views[name]
            ax.plot(
                range(len(norms)),
                [max(n, 1e-30) for n in norms],
                style,
                color=COLORS.get(cell),
                label=f"{cell} ({name})",
            )
    ax.set_yscale("log")
    ax.set_xlabel("steps back from the answer position")
    ax.set_ylabel("||d loss / d input||")
    ax.set_title(
        f"{task}, D = {max(int(d) for d in next(iter(result.accuracy[task].values())))}:"
        " how much the answer's loss reaches back"
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


__all__ = [
    "FULL",
    "QUICK",
    "LongRangeConfig",
    "LongRangeResult",
    "chance_level",
    "input_gradient_norms",
    "make_batch",
    "run_long_range",
    "summary_table",
    "write_outputs",
]
