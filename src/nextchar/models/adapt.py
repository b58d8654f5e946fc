"""Dynamic evaluation's forward for nn.RNN/LSTM/GRU at batch 1 on a CPU: the same outputs as
the module, with a backward that costs a fraction of autograd's through it.

Autograd through torch's recurrent layers takes the recurrent weights' gradient one time step
at a time: an outer product [gates * H, H] written and added for every token (87 % of a
dynamic evaluation's time on a CPU, measured with torch.profiler), and at batch 1 every one of
a step's small operations pays autograd's per-node cost. So the layers run here without a
graph, keeping what back-propagation needs, and `finish` back-propagates by hand: everything
that does not depend on the step before is computed for the whole segment at once, the
sequential part is a few vector operations and one matrix-vector product per step, and every
weight's gradient is one matrix product over the segment. The output layer and the embedding
keep autograd (they are one product each). Tested equal to autograd through the module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nextchar.models.contract import State


@dataclass
class _Tape:
    """One layer's forward, kept for the backward."""

    inputs: Tensor  # [T, H_in]
    before: Tensor  # [T, H]: the h each step started from
    # [T, ...] per cell: the factors of the backward that do not depend on the next step
    factors: dict[str, Tensor]


def _params(rnn: nn.RNNBase, layer: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """W_ih, W_hh, b_ih, b_hh of one layer (the biases None with bias=False)."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return tuple(getattr(rnn, f"{n}_l{layer}", None) for n in names)  # type: ignore[return-value]


@torch.no_grad()
def _forward_layer(
    kind: str, nonlinearity: str, rnn: nn.RNNBase, layer: int, x: Tensor, h: Tensor, c: Tensor
) -> tuple[Tensor, Tensor, Tensor, _Tape]:
    """x [T, H_in] -> (outputs [T, H], last h, last c, tape)."""
    w_ih, w_hh, b_ih, b_hh = _params(rnn, layer)
    size, steps = w_hh.shape[1], x.shape[0]
    parts = F.linear(x, w_ih, b_ih)  # [T, gates * H]: the input products, all at once
    b_rec = b_hh if b_hh is not None else torch.zeros_like(parts[0])
    outs = torch.empty(steps, size, dtype=x.dtype)
    before = torch.empty(steps, size, dtype=x.dtype)
    if kind == "lstm":
        gates = torch.empty_like(parts)  # activated i, f, g, o
        cells = torch.empty(steps + 1, size, dtype=x.dtype)  # c before each step, and the last
        cells[0] = c
        for t in range(steps):
            before[t] = h
            pre = torch.addmv(parts[t], w_hh, h).add_(b_rec)
            act = gates[t]
            torch.sigmoid(pre, out=act)
            torch.tanh(pre[2 * size : 3 * size], out=act[2 * size : 3 * size])
            i, f, g, o = act.view(4, size)
            c = torch.addcmul(f * c, i, g)
            cells[t + 1] = c
            h = outs[t] = o * c.tanh()
        i, f, g, o = gates.view(steps, 4, size).unbind(1)
        tc = cells[1:].tanh()
        factors = {
            # d pre-activation of i, f, g = dc * these; of o = dh * the last
            "ifg": torch.stack([g * i * (1 - i), cells[:-1] * f * (1 - f), i * (1 - g * g)], 1),
            "o": tc * o * (1 - o),
            "dc_from_h": o * (1 - tc * tc),
            "f": f,
        }
        return outs, h, c, _Tape(x, before, factors)
    if kind == "gru":
        # every step writes into these (out=): no copies in the loop
        zs = torch.empty(steps, 3 * size, dtype=x.dtype)  # W_hh h + b_hh: r, u, n parts
        rus = torch.empty(steps, 2 * size, dtype=x.dtype)
        ns = torch.empty(steps, size, dtype=x.dtype)
        before[0] = h
        for t in range(steps):
            z, ru, p = zs[t], rus[t], parts[t]
            torch.addmv(b_rec, w_hh, h, out=z)
            torch.sigmoid(p[: 2 * size] + z[: 2 * size], out=ru)
            torch.tanh(torch.addcmul(p[2 * size :], ru[:size], z[2 * size :]), out=ns[t])
            h = torch.lerp(ns[t], h, ru[size:], out=outs[t])  # (1 - u) * n + u * h
        before[1:] = outs[:-1]
        r, u, n, zn = rus[:, :size], rus[:, size:], ns, zs[:, 2 * size :]
        a = (1 - u) * (1 - n * n)  # d pre_n / dh
        dr = a * zn * r * (1 - r)
        du = (before - n) * u * (1 - u)
        factors = {"p": torch.stack([dr, du, a], 1), "z": torch.stack([dr, du, a * r], 1), "u": u}
        return outs, h, c, _Tape(x, before, factors)
    for t in range(steps):
        before[t] = h
        pre = torch.addmv(parts[t], w_hh, h).add_(b_rec)
        h = outs[t] = pre.tanh() if nonlinearity == "tanh" else pre.relu()
    slope = 1 - outs * outs if nonlinearity == "tanh" else (outs > 0).to(x.dtype)
    return outs, h, c, _Tape(x, before, {"slope": slope})


@torch.no_grad()
def _backward_layer(kind: str, rnn: nn.RNNBase, layer: int, tape: _Tape, d_out: Tensor) -> Tensor:
    """d loss / d outputs [T, H] -> d loss / d inputs [T, H_in]; sets the layer's weight and
    bias gradients. The carried state at the segment's start is a constant (detached)."""
    w_ih, w_hh, b_ih, b_hh = _params(rnn, layer)
    steps, size = d_out.shape
    w_t = w_hh.T
    d_rec = torch.empty(steps, w_hh.shape[0], dtype=d_out.dtype)  # d (W_hh h + b_hh) per step
    f = tape.factors
    if kind == "lstm":
        d_pre = d_rec  # the pre-activations hold W_hh h and W_ih x alike
        carry_h = torch.zeros(size, dtype=d_out.dtype)
        carry_c = torch.zeros(size, dtype=d_out.dtype)
        for t in range(steps - 1, -1, -1):
            dh = d_out[t] + carry_h
            dc = torch.addcmul(carry_c, dh, f["dc_from_h"][t])
            step = d_pre[t].view(4, size)
            torch.mul(f["ifg"][t], dc, out=step[:3])
            torch.mul(f["o"][t], dh, out=step[3])
            carry_h = w_t @ d_pre[t]
            carry_c = dc * f["f"][t]
        d_parts = d_pre
    elif kind == "gru":
        dhs = torch.empty(steps, size, dtype=d_out.dtype)
        carry = torch.zeros(size, dtype=d_out.dtype)
        z_factors = f["z"]
        for t in range(steps - 1, -1, -1):
            dh = dhs[t] = d_out[t] + carry
            torch.mul(z_factors[t], dh, out=d_rec[t].view(3, size))
            carry = torch.addmv(f["u"][t] * dh, w_t, d_rec[t])
        d_parts = (f["p"] * dhs.unsqueeze(1)).view(steps, -1)
    else:
        carry = torch.zeros(size, dtype=d_out.dtype)
        for t in range(steps - 1, -1, -1):
            torch.mul(d_out[t] + carry, f["slope"][t], out=d_rec[t])
            carry = w_t @ d_rec[t]
        d_parts = d_rec
    _add_grad(w_hh, d_rec.T @ tape.before)  # one product for the segment, not one per step
    _add_grad(w_ih, d_parts.T @ tape.inputs)
    if b_hh is not None:
        _add_grad(b_hh, d_rec.sum(0))
    if b_ih is not None:
        _add_grad(b_ih, d_parts.sum(0))
    return d_parts @ w_ih


def _add_grad(p: Tensor, grad: Tensor) -> None:
    p.grad = grad if p.grad is None else p.grad + grad


def unrolled_layers(
    rnn: nn.RNNBase, x: Tensor, state: State, kind: str
) -> tuple[Tensor, State, Callable[[], None]]:
    """x [1, T, H_in] (from the embedding: its graph is kept), state ((h,) or (h, c), each
    [L, 1, H]) -> (outputs [1, T, H], state, finish). The outputs are a leaf of the graph:
    after backward through what is computed from them, `finish()` back-propagates through the
    layers and into x. Inference mode only (no dropout between layers)."""
    layers, size = rnn.num_layers, rnn.hidden_size
    nonlinearity = getattr(rnn, "nonlinearity", "tanh")
    zeros = x.new_zeros(layers, 1, size)
    h_all = state[0] if state is not None else zeros
    c_all = state[1] if kind == "lstm" and state is not None else zeros
    inputs = x[0].detach()
    tapes, new_h, new_c = [], [], []
    for layer in range(layers):
        inputs, h, c, tape = _forward_layer(
            kind, nonlinearity, rnn, layer, inputs, h_all[layer, 0], c_all[layer, 0]
        )
        tapes.append(tape)
        new_h.append(h)
        new_c.append(c)
    top = inputs.unsqueeze(0).requires_grad_()

    def finish() -> None:
        d = top.grad[0] if top.grad is not None else torch.zeros_like(inputs)
        for layer in range(layers - 1, -1, -1):
            d = _backward_layer(kind, rnn, layer, tapes[layer], d)
        if x.requires_grad:  # an embedding: its gradient through autograd
            x.backward(d.unsqueeze(0))

    h_out = torch.stack(new_h).unsqueeze(1)
    out_state = (h_out, torch.stack(new_c).unsqueeze(1)) if kind == "lstm" else (h_out,)
    return top, out_state, finish
