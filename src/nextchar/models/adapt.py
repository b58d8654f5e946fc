"""Dynamic evaluation's forward for nn.RNN/LSTM/GRU at batch 1: the same outputs as the module,
with a backward that costs a fraction of the module's.

Autograd through torch's recurrent layers takes the recurrent weights' gradient one time step
at a time: an outer product [gates * H, H] written and added for every token (87 % of a
dynamic evaluation's time on a CPU, measured with torch.profiler). Here each layer's input
product runs over the whole segment at once, the recurrent products use a detached W_hh, and
the pre-activations W_hh h + b_hh keep their gradients; after backward, `finish` makes W_hh's
gradient one matrix product over the segment (and b_hh's one sum). Tested equal to autograd
through the module.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nextchar.models.contract import State


def unrolled_layers(
    rnn: nn.RNNBase, x: Tensor, state: State, kind: str
) -> tuple[Tensor, State, Callable[[], None]]:
    """x [1, T, H_in], state ((h,) or (h, c), each [L, 1, H]) -> (outputs [1, T, H], state,
    finish). Call `finish()` after backward: it sets each layer's weight_hh and bias_hh grads.
    Inference mode only (no dropout between layers)."""
    layers, size = rnn.num_layers, rnn.hidden_size
    nonlinearity = getattr(rnn, "nonlinearity", "tanh")
    h_all = state[0] if state is not None else x.new_zeros(layers, 1, size)
    c_all = state[1] if kind == "lstm" and state is not None else x.new_zeros(layers, 1, size)
    inputs = x[0]  # [T, H_in]
    tapes: list[tuple[nn.Parameter, nn.Parameter | None, list[Tensor], list[Tensor]]] = []
    new_h, new_c = [], []
    for layer in range(layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
        b_ih = getattr(rnn, f"bias_ih_l{layer}", None)
        b_hh = getattr(rnn, f"bias_hh_l{layer}", None)
        parts = F.linear(inputs, w_ih, b_ih)  # [T, gates * H]: one product for the segment
        w_rec = w_hh.detach()
        b_rec = b_hh.detach() if b_hh is not None else torch.zeros_like(parts[0])
        h, c = h_all[layer, 0], c_all[layer, 0]
        pre: list[Tensor] = []  # W_hh h + b_hh of each step, gradients kept
        before: list[Tensor] = []  # the h each of them multiplied
        outs = []
        # unbind and chunk, not indexing: their backward is one stack or cat, where every
        # index's backward would write a zero tensor of the whole
        for p in parts.unbind(0):
            z = torch.addmv(b_rec, w_rec, h)
            if z.requires_grad:
                z.retain_grad()
            else:  # the first step's h is a given state: z is a leaf of the graph
                z.requires_grad_()
            pre.append(z)
            before.append(h.detach())
            if kind == "lstm":
                i, f, g, o = (p + z).chunk(4)
                c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                h = o.sigmoid() * c.tanh()
            elif kind == "gru":
                p_r, p_u, p_n = p.chunk(3)
                z_r, z_u, z_n = z.chunk(3)
                r, u = (p_r + z_r).sigmoid(), (p_u + z_u).sigmoid()
                n = torch.addcmul(p_n, r, z_n).tanh()
                h = n + u * (h - n)  # (1 - u) * n + u * h
            else:
                h = (p + z).tanh() if nonlinearity == "tanh" else (p + z).relu()
            outs.append(h)
        tapes.append((w_hh, b_hh, pre, before))
        new_h.append(h)
        new_c.append(c)
        inputs = torch.stack(outs)

    def finish() -> None:
        for w_hh, b_hh, pre, before in tapes:
            grads = [z.grad if z.grad is not None else torch.zeros_like(z) for z in pre]
            g = torch.stack(grads)  # [T, gates * H]
            w_grad = g.T @ torch.stack(before)  # [gates * H, H]: one product, not T of them
            w_hh.grad = w_grad if w_hh.grad is None else w_hh.grad + w_grad
            if b_hh is not None:
                b_grad = g.sum(0)
                b_hh.grad = b_grad if b_hh.grad is None else b_hh.grad + b_grad

    h_out = torch.stack(new_h).unsqueeze(1)
    out_state = (h_out, torch.stack(new_c).unsqueeze(1)) if kind == "lstm" else (h_out,)
    return inputs.unsqueeze(0), out_state, finish
