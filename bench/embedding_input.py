"""One-hot vs embedding input: parameters and training-step time of the same LSTM language
model at vocabulary sizes 100, 10k and 50k (random ids; speed does not depend on the text).
Not a test: times depend on the machine; the ratio column is measured in the same run.

    python bench/embedding_input.py
    python bench/embedding_input.py --vocab 100,10000 --hidden-size 512
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nextchar.core.config import ModelConfig, model_config
from nextchar.models import build_model, count_parameters


def step_seconds(config: ModelConfig, batch: int, seq_len: int, repeats: int) -> float:
    """Median seconds of one forward + backward + AdamW step."""
    torch.manual_seed(0)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, config.vocab_size or 2, (batch, seq_len + 1))
    times = []
    for i in range(repeats + 1):  # the first step warms up allocators and kernels
        start = time.perf_counter()
        logits, _ = model(ids[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", default="100,10000,50000", help="comma-separated sizes")
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--embedding-dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    print(
        f"LSTM 1x{args.hidden_size}, embedding {args.embedding_dim}, batch "
        f"{args.batch_size}x{args.seq_len}, AdamW, {torch.get_num_threads()} threads; "
        "median of the steps"
    )
    print(
        "| vocabulary | input | input parameters | all parameters | ms / step "
        "| step time vs embedding |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for vocab in (int(v) for v in args.vocab.split(",")):
        results = {}
        for kind in ("embedding", "onehot"):
            config = model_config(
                vocab_size=vocab,
                cell="lstm",
                hidden_size=args.hidden_size,
                num_layers=1,
                input=kind,
                embedding_dim=args.embedding_dim,
            )
            model = build_model(config)
            # what the input side costs: the embedding table plus W_ih, or W_ih over one-hot
            inputs = model.rnn.weight_ih_l0.numel()
            if model.embedding is not None:
                inputs += model.embedding.weight.numel()
            seconds = step_seconds(config, args.batch_size, args.seq_len, args.repeats)
            results[kind] = (inputs, count_parameters(model), seconds)
        base = results["embedding"][2]
        for kind, (inputs, total, seconds) in results.items():
            print(
                f"| {vocab:,} | {kind} | {inputs:,} | {total:,} | {seconds * 1000:,.1f} "
                f"| {seconds / base:.2f}x |"
            )


if __name__ == "__main__":
    main()
