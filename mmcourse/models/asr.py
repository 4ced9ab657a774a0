"""A small CTC acoustic model: a strided 1-D convolution front end, residual dilated convolutions
(optionally a bidirectional GRU) and a per-frame softmax over ``blank`` + the ten digit words (chapter 11).

    log-Mel [B, T, 40] -> conv (stride 2) x 2 -> [B, C, T/4] -> 4 residual dilated convs -> Linear -> [B, T/4, 11]

One output frame covers 4 input hops (40 ms at a 10 ms hop): a digit word lasts 5-15 of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

BLANK = 0  # class 0 is the CTC blank; class d + 1 is the digit d


def output_lengths(lengths: torch.Tensor, stride: int = 4) -> torch.Tensor:
    """Output frames for ``lengths`` input frames (two stride-2 convolutions, kernel 5, padding 2)."""
    out = lengths
    for _ in range(stride.bit_length() - 1):
        out = (out - 1) // 2 + 1
    return out


class Block(nn.Module):
    """Residual temporal convolution: ``h + GELU(BN(conv_d(h)))``, ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.norm, self.drop = nn.BatchNorm1d(channels), nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.drop(nn.functional.gelu(self.norm(self.conv(h))))


class CTCRecognizer(nn.Module):
    """``forward((feats [B, T, n_mels], lengths [B]))`` -> log-probabilities ``[B, T', n_classes]``.

    Front end: two stride-2 convolutions (10 ms -> 40 ms frames); then residual dilated convolutions
    (dilations 1, 2, 4, 1: each output frame sees about 1.4 s of audio); optionally a bidirectional GRU
    added residually (``rnn_hidden > 0``; its output projection starts at zero). Frames past an
    utterance's length are zeroed after every layer, so a padded batch gives each utterance the
    emissions it gets alone; use :func:`output_lengths` for ``T'``.
    """

    def __init__(self, n_mels: int = 40, channels: int = 128, dilations: tuple[int, ...] = (1, 2, 4, 1),
                 kernel: int = 5, rnn_hidden: int = 0, n_classes: int = 11, dropout: float = 0.1):
        super().__init__()
        self.n_mels = n_mels
        self.front = nn.ModuleList(
            nn.Sequential(nn.Conv1d(c_in, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels), nn.GELU())
            for c_in in (n_mels, channels)
        )  # fmt: skip
        self.blocks = nn.ModuleList(Block(channels, kernel, d, dropout) for d in dilations)
        self.rnn = nn.GRU(channels, rnn_hidden, batch_first=True, bidirectional=True) if rnn_hidden else None
        self.rnn_out = nn.Linear(2 * rnn_hidden, channels) if rnn_hidden else None
        if self.rnn_out is not None:
            nn.init.zeros_(self.rnn_out.weight)
            nn.init.zeros_(self.rnn_out.bias)
        self.head = nn.Linear(channels, n_classes)

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        x, lengths = batch if isinstance(batch, (tuple, list)) else (batch, None)
        if x.ndim != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"expected log-Mel features [B, T, {self.n_mels}], got {tuple(x.shape)}")
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        h, n = x.transpose(1, 2), lengths.cpu()  # [B, n_mels, T]
        for layer in self.front:  # each halves the frame rate; frames past the length are zeroed
            h, n = layer(h), output_lengths(n, stride=2)
            mask = (torch.arange(h.shape[-1]) < n[:, None]).to(h.device, h.dtype).unsqueeze(1)  # [B, 1, T']
            h = h * mask
        out_len = n.clamp(1, h.shape[-1])
        for block in self.blocks:
            h = block(h) * mask
        h = h.transpose(1, 2)  # [B, T', C]
        if self.rnn is not None:
            packed = pack_padded_sequence(h, out_len, batch_first=True, enforce_sorted=False)
            r, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=h.shape[1])
            h = h + self.rnn_out(r)  # [B, T', C]
        return self.head(h).log_softmax(-1)  # [B, T', n_classes]


def pack_targets(frames: torch.Tensor, labels: list[list[int]]) -> torch.Tensor:
    """CTC targets in one tensor, so that :func:`mmcourse.train.fit` can carry them as ``y``:
    ``[B, 2 + L_max]`` int64, row ``[input frames, L, label_1 + 1, ..., label_L + 1, -1 ...]``."""
    L = max((len(s) for s in labels), default=0)
    y = torch.full((len(labels), 2 + L), -1, dtype=torch.long)
    for i, s in enumerate(labels):
        y[i, 0], y[i, 1] = int(frames[i]), len(s)
        y[i, 2 : 2 + len(s)] = torch.tensor(s, dtype=torch.long) + 1
    return y


def ctc_objective(log_probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``nn.CTCLoss`` (mean over the batch of the per-utterance loss / target length) for the
    output of :class:`CTCRecognizer` and targets from :func:`pack_targets`."""
    in_len = output_lengths(y[:, 0]).clamp(max=log_probs.shape[1])
    tgt_len = y[:, 1]
    targets = y[:, 2:].clamp_min(0)
    return nn.functional.ctc_loss(log_probs.float().transpose(0, 1), targets, in_len, tgt_len,
                                  blank=BLANK, zero_infinity=True)
