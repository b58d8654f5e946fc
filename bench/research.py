"""Bits per FLOP, the candidates a reviewer asks about: each trained by nextchar's own trainer
for the same wall budget on shakespeare, one thread each, two at a time side by side (each
beside the other: the same conditions for every row), scored on the whole validation file.
Cells nextchar does not ship (a layer-normalised GRU, the Mogrifier LSTM) are built here and
handed to the trainer in place of its model; everything else is a config or an optimiser
setting. Not a test.

    python bench/research.py --budget 150                  # every row
    python bench/research.py --budget 150 --rows gru,mogrifier
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from nextchar.core.config import TrainConfig, model_config
from nextchar.models.recurrent import RecurrentLM

# name -> (what it is, RecurrentConfig fields, TrainConfig fields, patch)
ROWS: dict[str, tuple[str, dict, dict, str | None]] = {
    "gru": ("GRU 2x384 (the reference: today's default shape)", {}, {}, None),
    "wider": ("wider: GRU 1x640", {"num_layers": 1, "hidden_size": 640}, {}, None),
    "deeper": ("deeper: GRU 3x288", {"num_layers": 3, "hidden_size": 288}, {}, None),
    "tied": (
        "tied embeddings: GRU 2x384, embedding 384 shared with the output layer",
        {"embedding_dim": 384, "tie_weights": True}, {}, None,
    ),
    "lstm": ("LSTM 2x384", {"cell": "lstm"}, {}, None),
    "mingru": ("minGRU 2x384 (parallel scan)", {"cell": "mingru"}, {}, None),
    "beta2": ("AdamW betas (0.9, 0.99) instead of (0.9, 0.999)", {}, {}, "beta2"),
    "floor0": ("cosine to 0 instead of 5 %", {}, {"min_lr_ratio": 0.0}, None),
    "floor20": ("cosine to 20 %", {}, {"min_lr_ratio": 0.2}, None),
    "lr3": ("learning rate 3e-3 instead of 6e-3", {}, {"lr": 3e-3}, None),
    "lr10": ("learning rate 1e-2", {}, {"lr": 1e-2}, None),
    "batch32": ("batch 32 x 64 instead of 64 x 64", {}, {"batch_size": 32}, None),
    "seq128": ("windows of 128 (batch 32)", {}, {"batch_size": 32, "seq_len": 128}, None),
    "lngru": ("GRU 2x384 with layer normalisation in the recurrence", {}, {}, "lngru"),
    "mogrifier": ("Mogrifier LSTM 2x320, 4 rounds (Melis et al. 2019)", {"cell": "lstm",
                  "hidden_size": 320}, {}, "mogrifier"),
}  # fmt: skip


class LayerNormGRU(nn.Module):
    """A GRU whose input and recurrent pre-activations are layer-normalised per gate group
    (Ba et al. 2016), stepped in Python: no fused kernel exists for it."""

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.ih, self.hh = nn.Linear(inputs, 3 * hidden), nn.Linear(hidden, 3 * hidden)
        self.ln_i, self.ln_h = nn.LayerNorm(3 * hidden), nn.LayerNorm(3 * hidden)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gi = self.ln_i(self.ih(x))  # [B, T, 3H], all steps at once
        outs = []
        for t in range(x.shape[1]):
            gh = self.ln_h(self.hh(h))
            i_r, i_z, i_n = gi[:, t].chunk(3, -1)
            h_r, h_z, h_n = gh.chunk(3, -1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = n + z * (h - n)
            outs.append(h)
        return torch.stack(outs, 1), h


class MogrifierLSTM(nn.Module):
    """One Mogrifier LSTM layer: before each step, x and h gate each other for `rounds`
    rounds (x *= 2 sigmoid(Q h), then h *= 2 sigmoid(R x), ...), then an LSTM cell."""

    def __init__(self, inputs: int, hidden: int, rounds: int = 4) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(inputs, hidden)
        self.q = nn.ModuleList(nn.Linear(hidden, inputs) for _ in range((rounds + 1) // 2))
        self.r = nn.ModuleList(nn.Linear(inputs, hidden) for _ in range(rounds // 2))
        self.rounds = rounds

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        outs = []
        for t in range(x.shape[1]):
            xt = x[:, t]
            for i in range(self.rounds):
                if i % 2 == 0:
                    xt = 2 * torch.sigmoid(self.q[i // 2](h)) * xt
                else:
                    h = 2 * torch.sigmoid(self.r[i // 2](xt)) * h
            h, c = self.cell(xt, (h, c))
            outs.append(h)
        return torch.stack(outs, 1), (h, c)


class Stack(nn.Module):
    """Layers of one of the cells above, taking and returning the contract's state layout
    ([L, B, H] per tensor) as nn.GRU / nn.LSTM do."""

    def __init__(self, make, inputs: int, hidden: int, layers: int, lstm: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            make(inputs if i == 0 else hidden, hidden) for i in range(layers)
        )
        self.hidden, self.lstm = hidden, lstm

    def forward(self, x: torch.Tensor, state=None):
        b = x.shape[0]
        if state is None:
            zeros = x.new_zeros(len(self.layers), b, self.hidden)
            state = (zeros, zeros.clone()) if self.lstm else zeros
        hs, cs = [], []
        for i, layer in enumerate(self.layers):
            if self.lstm:
                x, (h, c) = layer(x, (state[0][i], state[1][i]))
                cs.append(c)
            else:
                x, h = layer(x, state[i])
            hs.append(h)
        new = (torch.stack(hs), torch.stack(cs)) if self.lstm else torch.stack(hs)
        return x, new


def build_patched(kind: str, config):
    """A RecurrentLM whose layers are replaced by the research cell (same embedding, head,
    state and contract)."""
    model = RecurrentLM(config)
    if kind == "lngru":
        model.rnn = Stack(
            LayerNormGRU, config.input_size, config.hidden_size, config.num_layers, False
        )
    else:
        model.rnn = Stack(
            MogrifierLSTM, config.input_size, config.hidden_size, config.num_layers, True
        )
    model.capabilities = frozenset()  # the fused stepper and unrolled adaptation do not apply
    return model


def one(name: str, budget: float) -> dict:
    _, model_kw, train_kw, patch = ROWS[name]
    if patch == "beta2":
        from nextchar.core import optim
        from nextchar.training import opening

        opening.AdamW = functools.partial(optim.AdamW, betas=(0.9, 0.99))
    elif patch:
        from nextchar.training import loop, opening, sizing

        def build(config):
            return build_patched(patch, config)

        opening.build_model = loop.build_model = sizing.build_model = build
    config = TrainConfig(
        files=("shakespeare",), val_file="shakespeare:val", max_steps=None, max_time=budget,
        threads=1, **train_kw,
    )  # fmt: skip
    from nextchar.training.loop import train

    with tempfile.TemporaryDirectory() as tmp:
        result = train(model_config(**model_kw), config, Path(tmp) / "run", progress=False)
    return {
        "steps": result.step,
        "chars_per_second": result.chars_per_second,
        "parameters": result.parameters,
        "bpc": result.final_val_bpc,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=150.0, help="seconds per row")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.budget)))
        return
    names = args.rows.split(",")
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        runs = {
            n: pool.submit(
                subprocess.run,
                [sys.executable, __file__, "--one", n, "--budget", str(args.budget)],
                capture_output=True, text=True,
            )
            for n in names
        }  # fmt: skip
    print(f"\n{args.budget:.0f} s each, one thread, two at a time\n")
    print("| candidate | parameters | steps | chars/s | val bpc | vs the reference |")
    print("|---|---:|---:|---:|---:|---:|")
    results = {}
    for n in names:
        done = runs[n].result()
        if done.returncode:
            print(f"| {ROWS[n][0]} | failed: {done.stderr.strip().splitlines()[-1]} |||||")
            continue
        results[n] = json.loads(done.stdout.strip().splitlines()[-1])
    ref = results.get("gru", {}).get("bpc")
    for n, r in results.items():
        diff = f"{r['bpc'] - ref:+.3f}" if ref is not None else ""
        print(
            f"| {ROWS[n][0]} | {r['parameters']:,} | {r['steps']} | "
            f"{r['chars_per_second']:,.0f} | {r['bpc']:.3f} | {diff} |"
        )


if __name__ == "__main__":
    main()
