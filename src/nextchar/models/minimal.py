"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): recurrent cells whose
gates read the input only, never the previous state. The recurrence is then linear in h,

    h_t = a_t * h_{t-1} + b_t,

so a whole window is solved at once by a parallel scan (training, evaluation), while sampling
steps it one token at a time with the same carried state.

    minGRU:  z = sigmoid(W_z x),  h~ = g(W_h x),  a = 1 - z,  b = z * h~
    minLSTM: f = sigmoid(W_f x),  i = sigmoid(W_i x),  h~ = g(W_h x),
             a = f / (f + i),  b = i / (f + i) * h~
    g(v) = v + 0.5 for v >= 0, sigmoid(v) below: always positive, so the scan runs in log space
    (the paper's log-space form), where long products of gates neither underflow nor overflow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# What each cell shows besides h in the cell view: its gates, in [0, 1].
GATES: dict[str, dict[str, str]] = {
    "mingru": {"z": "z (update gate)"},
    "minlstm": {"f": "f (forget gate, normalised)", "i": "i (input gate, normalised)"},
}


def g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


def scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t for every t at once. log_a, log_b [B, T, H]; h0 [B, H] >= 0.

    With A_t = sum_{s<=t} log a_s: h_t = e^{A_t} (h0 + sum_{s<=t} b_s e^{-A_s}), so
    log h_t = A_t + logcumsumexp over (log h0, log b_s - A_s)."""
    a_star = log_a.cumsum(1)
    # h0 is zero at the start of a stream: its log is clamped to the smallest normal float,
    # whose share of every later h is below float resolution
    log_h0 = torch.log(h0.clamp_min(torch.finfo(h0.dtype).tiny)).unsqueeze(1)
    terms = torch.cat([log_h0, log_b - a_star], dim=1)  # [B, T + 1, H]
    return (a_star + torch.logcumsumexp(terms, dim=1)[:, 1:]).exp()


class MinCell(nn.Module):
    """One minGRU or minLSTM layer: x [B, T, I], h0 [B, H] -> h [B, T, H] (every step)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, bias: bool) -> None:
        super().__init__()
        self.cell = cell
        self.hidden_size = hidden_size
        parts = 2 if cell == "mingru" else 3
        self.linear = nn.Linear(input_size, parts * hidden_size, bias=bias)

    def log_coefficients(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(log a, log b, gates) of every step, from the input alone."""
        if self.cell == "mingru":
            k, v = self.linear(x).chunk(2, dim=-1)
            log_z = -F.softplus(-k)
            return -F.softplus(k), log_z + log_g(v), {"z": log_z.exp()}
        k_f, k_i, v = self.linear(x).chunk(3, dim=-1)
        # log f/(f+i) and log i/(f+i) from the pre-activations, without forming f + i
        diff = F.softplus(-k_f) - F.softplus(-k_i)
        log_f, log_i = -F.softplus(diff), -F.softplus(-diff)
        return log_f, log_i + log_g(v), {"f": log_f.exp(), "i": log_i.exp()}

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if x.shape[1] == 1:  # one token (sampling): the recurrence itself is cheaper
            return self.step(x, h0)
        log_a, log_b, gates = self.log_coefficients(x)
        return scan(log_a, log_b, h0), gates

    def step(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The sequential recurrence, one token after another: the reference the scan must
        equal, and the fast path for a single token."""
        log_a, log_b, gates = self.log_coefficients(x)
        a, b = log_a.exp(), log_b.exp()
        h, out = h0, []
        for t in range(x.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return torch.stack(out, 1), gates


class MinRNN(nn.Module):
    """Stacked minGRU/minLSTM layers with nn.GRU's interface (batch first):
    forward(x [B, T, I], h0 [L, B, H] or None) -> (out [B, T, H], h_n [L, B, H])."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(MinCell(cell, n, hidden_size, bias) for n in sizes)
        self.drop = nn.Dropout(dropout)  # between layers, as nn.GRU's `dropout`

    def trace(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(out, h_n, every layer's states) with states[name] [L, B, T, H] for h and gates."""
        if h0 is None:
            h0 = x.new_zeros(self.num_layers, x.shape[0], self.hidden_size)
        finals, seen = [], {}
        for index, layer in enumerate(self.layers):
            if index:
                x = self.drop(x)
            x, gates = layer(x, h0[index])
            finals.append(x[:, -1])
            for name, value in {"h": x, **gates}.items():
                seen.setdefault(name, []).append(value)
        states = {name: torch.stack(values) for name, values in seen.items()}
        return x, torch.stack(finals), states

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_n, _ = self.trace(x, h0)
        return out, h_n
