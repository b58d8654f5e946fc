"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): recurrent cells whose
gates read the input only, never the previous state. The recurrence is then linear in h,

    h_t = a_t * h_{t-1} + b_t,

so a whole window is solved at once by a parallel scan over time, while sampling steps it one
token at a time with the same carried state.

    minGRU:  z = sigmoid(W_z x),  h~ = g(W_h x),  a = 1 - z,  b = z * h~
    minLSTM: f = sigmoid(W_f x),  i = sigmoid(W_i x),  h~ = g(W_h x),
             a = f / (f + i),  b = i / (f + i) * h~
    g(v) = v + 0.5 for v >= 0, sigmoid(v) below: always positive, so the scan runs in log space
    (the paper's log-space form), where long products of gates neither underflow nor overflow.

Which kernel solves the window is a measured choice per device, as cuDNN and oneDNN are for
nn.GRU: on a GPU, the log-space parallel scan (`scan`); on a CPU, whose two to eight cores are
already filled by batch x units, the recurrence itself in one fused autograd function
(`recurrence`: a loop over time without a graph node per step), several times faster than
the scan's logcumsumexp there (bench/minimal_cells.py). Both compute the same h; a test
holds them to it, forward and gradients.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# What each cell shows besides h in the cell view: its gates, in [0, 1].
GATE_LABELS: dict[str, dict[str, str]] = {
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


class _Recurrence(torch.autograd.Function):
    """h_t = a_t h_{t-1} + b_t, step by step, with the backward recurrence written out:
    with g_t the gradient reaching h_t (from the output and from h_{t+1}, through a_{t+1}),
    dL/db_t = g_t, dL/da_t = g_t h_{t-1} and dL/dh0 = a_1 g_1."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        out, h = torch.empty_like(b), h0
        for t in range(b.shape[1]):
            h = torch.addcmul(b[:, t], a[:, t], h)
            out[:, t] = h
        ctx.save_for_backward(a, out, h0)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a, out, h0 = ctx.saved_tensors
        grad_b, carry = torch.empty_like(grad), torch.zeros_like(h0)
        for t in range(grad.shape[1] - 1, -1, -1):
            carry = grad[:, t] + carry
            grad_b[:, t] = carry
            carry = carry * a[:, t]
        before = torch.cat([h0.unsqueeze(1), out[:, :-1]], dim=1)  # h_{t-1} for every t
        return grad_b * before, grad_b, carry


def recurrence(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t for every t, sequentially. a, b [B, T, H]; h0 [B, H]."""
    return _Recurrence.apply(a, b, h0)


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

    def coefficients(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(a, b, gates) of every step, in linear space (the recurrence needs no logs)."""
        if self.cell == "mingru":
            k, v = self.linear(x).chunk(2, dim=-1)
            z = torch.sigmoid(k)
            return 1 - z, z * g(v), {"z": z}
        k_f, k_i, v = self.linear(x).chunk(3, dim=-1)
        f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
        f, i = f / (f + i), i / (f + i)
        return f, i * g(v), {"f": f, "i": i}

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if x.device.type == "cpu" or x.shape[1] == 1:  # see the module docstring
            a, b, gates = self.coefficients(x)
            return recurrence(a, b, h0), gates
        log_a, log_b, gates = self.log_coefficients(x)
        return scan(log_a, log_b, h0), gates


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
