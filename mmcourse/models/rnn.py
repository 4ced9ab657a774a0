"""Recurrent cells and layers written out: RNN, LSTM, GRU.

Each cell holds the same four parameters as ``torch.nn.RNNCell`` / ``LSTMCell`` /
``GRUCell`` (``weight_ih [G*H, I]``, ``weight_hh [G*H, H]``, ``bias_ih``, ``bias_hh [G*H]``,
``G`` = 1, 4, 3 gates), with the gates in torch's order, so copying torch's weights in
gives the same numbers (the tests check this to 1e-5).

    RNN:   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    LSTM:  i, f, g, o = sigma, sigma, tanh, sigma of (W_ih x + b_ih + W_hh h + b_hh) split in 4
           c' = f * c + i * g          h' = o * tanh(c')
    GRU:   r, z = sigma(W_ir x + b_ir + W_hr h + b_hr), sigma(W_iz x + b_iz + W_hz h + b_hz)
           n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      h' = (1 - z) * n + z * h

The layers (:class:`RNN`, :class:`LSTM`, :class:`GRU`) loop over time in Python and stack
cells for ``num_layers`` and ``bidirectional``; they take and return the same shapes as
torch's modules, and :meth:`RecurrentLayer.copy_from` loads a torch module's weights.
They are for reading and checking; the applied models use torch's fused ``nn.LSTM``/``nn.GRU``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class _Cell(nn.Module):
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"sizes must be positive, got input {input_size}, hidden {hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        g = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(g)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(g)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), as torch initialises its recurrent modules."""
        k = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def _check(self, x: torch.Tensor, h: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects x [B, {self.input_size}], got {tuple(x.shape)}")
        if h.shape != (x.shape[0], self.hidden_size):
            raise ValueError(f"expected a state [{x.shape[0]}, {self.hidden_size}], got {tuple(h.shape)}")

    def _affine(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_ih x + b_ih, W_hh h + b_hh)``, each ``[B, G*H]``."""
        gi = x @ self.weight_ih.T
        gh = h @ self.weight_hh.T
        if self.bias_ih is not None:
            gi, gh = gi + self.bias_ih, gh + self.bias_hh
        return gi, gh

    def zero_state(self, batch: int, like: torch.Tensor) -> State:
        return like.new_zeros(batch, self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_Cell):
    """Elman cell: ``x [B, I], h [B, H] -> h' [B, H]``. ``nonlinearity``: tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        h = self.zero_state(x.shape[0], x) if h is None else h
        self._check(x, h)
        gi, gh = self._affine(x, h)
        return torch.tanh(gi + gh) if self.nonlinearity == "tanh" else torch.relu(gi + gh)


class LSTMCell(_Cell):
    """``x [B, I], (h, c) [B, H] each -> (h', c')``. Gates in torch's order: input, forget, cell, output."""

    gates = 4

    def zero_state(self, batch: int, like: torch.Tensor) -> State:
        z = like.new_zeros(batch, self.hidden_size)
        return z, z

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        h, c = self.zero_state(x.shape[0], x) if state is None else state
        self._check(x, h)
        self._check(x, c)
        gi, gh = self._affine(x, h)
        i, f, g, o = (gi + gh).chunk(4, dim=1)  # each [B, H]
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class GRUCell(_Cell):
    """``x [B, I], h [B, H] -> h' [B, H]``. Gates in torch's order: reset, update, new."""

    gates = 3

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        h = self.zero_state(x.shape[0], x) if h is None else h
        self._check(x, h)
        gi, gh = self._affine(x, h)
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)  # the reset gate scales only the recurrent part
        return (1 - z) * n + z * h


class RecurrentLayer(nn.Module):
    """A stack of cells run over time, with torch's interface.

    ``forward(x [T, B, I] (or [B, T, I] if batch_first), state=None)`` returns
    ``(output [T, B, D*H], h_n [L*D, B, H])`` (LSTM: ``(h_n, c_n)``), ``D = 2`` if
    bidirectional, ``L = num_layers``; ``output`` is the last layer's hidden state at every step.
    """

    cell_class: type[_Cell] = RNNCell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 **cell_kwargs):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.bidirectional, self.dropout = batch_first, bidirectional, dropout
        self.directions = 2 if bidirectional else 1
        self.cells = nn.ModuleList()
        for layer in range(num_layers):
            size = input_size if layer == 0 else hidden_size * self.directions
            for _ in range(self.directions):  # index layer * D + direction, as torch's h_n
                self.cells.append(self.cell_class(size, hidden_size, bias, **cell_kwargs))

    @property
    def is_lstm(self) -> bool:
        return self.cell_class is LSTMCell

    def _initial(self, state, batch: int, x: torch.Tensor) -> list:
        """One state per cell (``[B, H]``, or a pair for the LSTM)."""
        n = self.num_layers * self.directions
        if state is None:
            return [self.cells[k].zero_state(batch, x) for k in range(n)]
        parts = state if self.is_lstm else (state,)
        for s in parts:
            if not isinstance(s, torch.Tensor) or s.shape != (n, batch, self.hidden_size):
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"expected an initial state [{n}, {batch}, {self.hidden_size}], got {got}")
        if self.is_lstm:
            return [(state[0][k], state[1][k]) for k in range(n)]
        return [state[k] for k in range(n)]

    def forward(self, x: torch.Tensor, state: State | None = None):
        if x.ndim != 3:
            raise ValueError(f"expected x [T, B, I] (or [B, T, I] with batch_first), got {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"expected {self.input_size} input features, got {x.shape[-1]}")
        if self.batch_first:
            x = x.transpose(0, 1)  # [T, B, I]
        steps, batch = x.shape[0], x.shape[1]
        states = self._initial(state, batch, x)
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.directions):
                k = layer * self.directions + d
                cell, s = self.cells[k], states[k]
                hs = [x.new_empty(0)] * steps
                order = range(steps) if d == 0 else reversed(range(steps))
                for t in order:
                    s = cell(x[t], s)
                    hs[t] = s[0] if self.is_lstm else s
                outs.append(torch.stack(hs))  # [T, B, H]
                finals.append(s)
            x = torch.cat(outs, dim=-1)  # [T, B, D*H]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout)
        out = x.transpose(0, 1) if self.batch_first else x
        if self.is_lstm:
            return out, (torch.stack([f[0] for f in finals]), torch.stack([f[1] for f in finals]))
        return out, torch.stack(finals)

    @torch.no_grad()
    def copy_from(self, module: nn.RNNBase) -> RecurrentLayer:
        """Load the weights of a torch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` of the same shape."""
        sd = module.state_dict()
        for layer in range(self.num_layers):
            for d in range(self.directions):
                cell = self.cells[layer * self.directions + d]
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                for name, p in cell.named_parameters():
                    key = name + suffix
                    if key not in sd or sd[key].shape != p.shape:
                        raise ValueError(f"{type(module).__name__} has no parameter {key} of shape "
                                         f"{tuple(p.shape)}: the two layers differ")
                    p.copy_(sd[key])
        return self

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, bidirectional={self.bidirectional}")


class RNN(RecurrentLayer):
    """Like ``nn.RNN`` (``nonlinearity="tanh"`` or ``"relu"``)."""

    cell_class = RNNCell


class LSTM(RecurrentLayer):
    """Like ``nn.LSTM``: the state is a pair ``(h, c)``, each ``[L*D, B, H]``."""

    cell_class = LSTMCell


class GRU(RecurrentLayer):
    """Like ``nn.GRU``."""

    cell_class = GRUCell


def input_gradient_norms(cell: _Cell, x: torch.Tensor, readout: torch.Tensor | None = None) -> torch.Tensor:
    """How much the input at each step can still change the output at the last step.

    Runs ``cell`` over ``x [T, B, I]`` from a zero state, takes a loss on the last hidden
    state only (``(h_T * readout).sum()``, ``readout [H]``, default all ones) and returns
    ``||dloss / dx_t||`` for every step ``t``: ``[T]``. Vanishing gradients show as norms
    that shrink towards ``t = 0``; exploding gradients as norms that grow.
    """
    if x.ndim != 3:
        raise ValueError(f"expected x [T, B, I], got {tuple(x.shape)}")
    x = x.detach().clone().requires_grad_(True)
    s = None
    for t in range(x.shape[0]):
        s = cell(x[t], s)
    h = s[0] if isinstance(s, tuple) else s  # [B, H]
    w = torch.ones(h.shape[-1], dtype=h.dtype) if readout is None else readout
    (grad,) = torch.autograd.grad((h * w).sum(), x)
    return grad.flatten(1).norm(dim=1).detach()  # [T]
