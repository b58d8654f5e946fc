"""One token at a time through nn.RNN/LSTM/GRU weights, for sampling on a CPU.

At batch 1 a recurrent step is a few matrix-vector products, and torch's fused kernels cost
more around them than the products themselves: nn.LSTM 2x256 took 3.2 ms a step through oneDNN
on one thread of an AVX2 CPU and 0.38 ms with oneDNN off, where the products take about
0.1 ms. Here the same equations run as plain `addmv` calls on the module's own weights, and the
first layer's input product is looked up: embedding @ W_ih0^T + b_ih0 is computed once for
every token, a table [V, gates * H] (one-hot input: W_ih0's columns). Tested equal to the
module's forward, token by token.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from nextchar.models.contract import State, Stepper


def _layer_update(kind: str, nonlinearity: str, hidden: int) -> Callable:
    """update(x_part, w_hh, b_hh, h, c) -> (h, c): one layer's step from its input's gate
    pre-activations. LSTM and RNN add every bias into x_part (so W_hh h is added by addmv in
    the same call); the GRU keeps b_hh apart, since r multiplies W_hn h + b_hn."""
    size = hidden

    def lstm(x_part: Tensor, w_hh: Tensor, b_hh: Tensor, h: Tensor, c: Tensor):
        gates = torch.addmv(x_part, w_hh, h)  # i, f, g, o
        sig = gates.sigmoid()  # g's sigmoid is wasted; one call beats three
        c = torch.addcmul(sig[size : 2 * size] * c, sig[:size], gates[2 * size : 3 * size].tanh())
        return sig[3 * size :] * c.tanh(), c

    def gru(x_part: Tensor, w_hh: Tensor, b_hh: Tensor, h: Tensor, c: None):
        gh = torch.addmv(b_hh, w_hh, h)  # r, z, n
        rz = (x_part[: 2 * size] + gh[: 2 * size]).sigmoid()
        n = torch.addcmul(x_part[2 * size :], rz[:size], gh[2 * size :]).tanh()
        return torch.addcmul(n, rz[size:], h - n), None  # (1 - z) * n + z * h

    def rnn(x_part: Tensor, w_hh: Tensor, b_hh: Tensor, h: Tensor, c: None):
        out = torch.addmv(x_part, w_hh, h)
        return (out.tanh() if nonlinearity == "tanh" else out.relu()), None

    return {"lstm": lstm, "gru": gru, "rnn": rnn}[kind]


@torch.no_grad()
def fused_stepper(
    rnn: nn.RNNBase, embedding: nn.Embedding | None, head: nn.Linear, kind: str, state: State
) -> Stepper:
    """A Stepper for an nn.RNN/LSTM/GRU (no projection) between an input and an output
    layer, starting from the contract's state tuple ((h,) or (h, c), each [L, 1, H])."""
    layers = rnn.num_layers

    def param(name: str, layer: int) -> Tensor:
        value = getattr(rnn, f"{name}_l{layer}", None)
        if value is None:  # bias=False
            rows = getattr(rnn, f"weight_hh_l{layer}").shape[0]
            return torch.zeros(rows, dtype=head.weight.dtype)
        return value.detach()

    w_ih = [param("weight_ih", i) for i in range(layers)]
    w_hh = [param("weight_hh", i) for i in range(layers)]
    b_hh = [param("bias_hh", i) for i in range(layers)]
    # what is added to W_ih x: b_ih, and b_hh too but for the GRU (see _layer_update)
    b_in = [param("bias_ih", i) + (0 if kind == "gru" else b_hh[i]) for i in range(layers)]
    table = (embedding.weight.detach() @ w_ih[0].T) if embedding is not None else w_ih[0].T
    table = (table + b_in[0]).contiguous()  # [V, gates * H]: layer 0's input part per token
    head_w, head_b = head.weight.detach(), head.bias.detach()
    update = _layer_update(kind, getattr(rnn, "nonlinearity", "tanh"), rnn.hidden_size)
    h = [state[0][i, 0].clone() for i in range(layers)]
    c: list = [state[1][i, 0].clone() for i in range(layers)] if kind == "lstm" else [None] * layers

    def step(token: int) -> Tensor:  # every tensor here is detached: no graph is built
        x_part = table[token]
        for i in range(layers):
            if i:
                x_part = torch.addmv(b_in[i], w_ih[i], h[i - 1])
            h[i], c[i] = update(x_part, w_hh[i], b_hh[i], h[i], c[i])
        return torch.addmv(head_b, head_w, h[-1]).unsqueeze(0)

    return step
