"""Sequence models built on torch's fused recurrent layers.

- :class:`SequenceClassifier`: an LSTM (or GRU) over feature frames ``[B, T, C]`` of
  variable length, packed with ``pack_padded_sequence`` so padding never enters the state;
  the last layer's final state classifies. Used on FSDD's MFCC frames.
- :class:`CNNRNN`: a 1-D convolutional front end over a spectrogram ``[B, C, T]`` (local
  patterns, time downsampled by 4) feeding a GRU (the order of those patterns).
- :class:`CharLM`: embedding -> LSTM -> logits over the next character, with
  :meth:`CharLM.sample` (temperature) and :func:`unigram_baseline`.

Variable-length batches travel as dicts ``{"frames": [B, T, C], "lengths": [B]}`` (see
:class:`PaddedSequences`), which ``mmcourse.train.fit`` passes to the model as one argument.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import Dataset

from mmcourse.config import offset_seed


def _unpack(x, lengths) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Accept ``model(x, lengths)`` or ``model({"frames": x, "lengths": lengths})``."""
    if isinstance(x, dict):
        missing = {"frames", "lengths"} - x.keys()
        if missing:
            raise ValueError(f"a batch dict needs keys 'frames' and 'lengths'; missing {sorted(missing)}")
        return x["frames"], x["lengths"]
    return x, lengths


def _check_lengths(lengths: torch.Tensor | None, batch: int, steps: int) -> torch.Tensor:
    if lengths is None:
        return torch.full((batch,), steps, dtype=torch.int64)
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (batch,):
        raise ValueError(f"expected lengths [{batch}], got {tuple(lengths.shape)}")
    if lengths.min() < 1 or lengths.max() > steps:
        raise ValueError(f"lengths must be in 1..{steps} (the padded length), got "
                         f"{int(lengths.min())}..{int(lengths.max())}")
    return lengths.cpu().long()


def frame_lengths(samples: torch.Tensor, hop_length: int = 80, max_frames: int | None = None) -> torch.Tensor:
    """Frames of centred STFT windows covering ``samples [N]`` samples: ``samples // hop + 1``."""
    frames = torch.as_tensor(samples) // hop_length + 1
    return frames.clamp(max=max_frames) if max_frames is not None else frames


def masked_mean_std(frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std ``[C]`` over the real (unpadded) frames of ``frames [N, T, C]``."""
    if frames.ndim != 3:
        raise ValueError(f"expected frames [N, T, C], got {tuple(frames.shape)}")
    mask = torch.arange(frames.shape[1])[None, :] < lengths[:, None]  # [N, T]
    valid = frames[mask]  # [sum(lengths), C]
    return valid.mean(0), valid.std(0).clamp_min(1e-6)


class PaddedSequences(Dataset):
    """``({"frames": [T, C], "lengths": []}, label)`` items from padded ``frames [N, T, C]``
    (``time_dim=2``: ``[N, C, T]``), true ``lengths [N]`` and ``labels [N]``; the default
    collate stacks them into batches."""

    def __init__(self, frames: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
                 time_dim: int = 1):
        if frames.ndim != 3 or time_dim not in (1, 2):
            raise ValueError(f"expected frames [N, T, C] or [N, C, T] (time_dim 1 or 2), got "
                             f"{tuple(frames.shape)}, time_dim={time_dim}")
        if not len(frames) == len(lengths) == len(labels):
            raise ValueError(f"frames, lengths, labels differ in length: {len(frames)}, {len(lengths)}, {len(labels)}")
        _check_lengths(lengths, len(frames), frames.shape[time_dim])
        self.frames, self.lengths, self.labels = frames, torch.as_tensor(lengths).long(), labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return {"frames": self.frames[i], "lengths": self.lengths[i]}, self.labels[i]


class SequenceClassifier(nn.Module):
    """Frames ``[B, T, C]`` + true ``lengths [B]`` -> logits ``[B, K]``.

    The padded batch is packed (``pack_padded_sequence``), so each sequence's final state is
    the state after *its own* last frame, exactly as if it had been run alone; the final
    states of the last layer (both directions if bidirectional) feed a linear head.
    """

    def __init__(self, n_features: int, num_classes: int, hidden: int = 64, num_layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.n_features = n_features
        self.rnn = rnn(n_features, hidden, num_layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden * (2 if bidirectional else 1), num_classes))

    def encode(self, x, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The sequence summary ``[B, D*H]``: the last layer's final hidden state(s)."""
        x, lengths = _unpack(x, lengths)
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise ValueError(f"expected frames [B, T, {self.n_features}], got {tuple(x.shape)}")
        lengths = _check_lengths(lengths, x.shape[0], x.shape[1])
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        h = h[0] if isinstance(h, tuple) else h  # [L*D, B, H] (LSTM: h of (h, c))
        d = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(h[-d:]), dim=-1)  # [B, D*H]

    def forward(self, x, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encode(x, lengths))


class CNNRNN(nn.Module):
    """Spectrogram ``[B, C, T]`` (+ ``lengths [B]`` in frames) -> logits ``[B, K]``.

    Two conv blocks (Conv1d over time, BatchNorm, ReLU, MaxPool(2)) turn ``C`` bands into
    ``channels`` learned features at a quarter of the frame rate ``[B, channels, T//4]``;
    a GRU reads that shorter sequence (packed with the lengths divided by 4) and its final
    state classifies.
    """

    def __init__(self, n_features: int, num_classes: int, channels: int = 64, hidden: int = 64):
        super().__init__()
        self.n_features = n_features

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(c_in, c_out, 5, padding=2), nn.BatchNorm1d(c_out), nn.ReLU(),
                                 nn.MaxPool1d(2))

        self.conv = nn.Sequential(block(n_features, channels), block(channels, channels))
        self.gru = nn.GRU(channels, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The conv front end's output ``[B, channels, T//4]``."""
        if x.ndim != 3 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a spectrogram [B, {self.n_features}, T], got {tuple(x.shape)}")
        if x.shape[-1] < 4:
            raise ValueError(f"need at least 4 frames, got {x.shape[-1]}")
        return self.conv(x)

    def forward(self, x, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x, lengths = _unpack(x, lengths)
        maps = self.feature_maps(x).transpose(1, 2)  # [B, T//4, channels]
        lengths = _check_lengths(lengths, x.shape[0], x.shape[-1])
        lengths = (lengths // 4).clamp(1, maps.shape[1])
        _, h = self.gru(pack_padded_sequence(maps, lengths, batch_first=True, enforce_sorted=False))
        return self.head(h[-1])  # [B, K]


class CharLM(nn.Module):
    """Character-level language model: ids ``[B, T]`` -> next-character logits ``[B, T, V]``."""

    def __init__(self, vocab_size: int, embed: int = 32, hidden: int = 256, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx: torch.Tensor, state=None, return_state: bool = False):
        if idx.ndim != 2 or idx.dtype != torch.int64:
            raise ValueError(f"expected ids [B, T] int64, got {tuple(idx.shape)} {idx.dtype}")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(f"ids must be in 0..{self.vocab_size - 1}")
        out, state = self.lstm(self.embed(idx), state)  # [B, T, H]
        logits = self.head(out)  # [B, T, V]
        return (logits, state) if return_state else logits

    @torch.no_grad()
    def next_probs(self, prompt: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """The distribution ``[V]`` of the character after ``prompt [T]`` at ``temperature``."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        logits = self(prompt[None].to(self.head.weight.device))[0, -1]
        return torch.softmax(logits.float() / temperature, -1).cpu()

    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, n: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Continue ``prompt [T]`` by ``n`` characters, drawn from softmax(logits / temperature):
        ``[n]`` ids. Low temperature -> nearly greedy and repetitive; high -> nearly uniform."""
        if prompt.ndim != 1 or len(prompt) == 0:
            raise ValueError(f"expected a non-empty prompt [T], got {tuple(prompt.shape)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        logits, state = self(prompt[None].to(device), return_state=True)
        out = []
        for _ in range(n):
            p = torch.softmax(logits[0, -1].float() / temperature, -1).cpu()
            nxt = torch.multinomial(p, 1, generator=generator)  # [1]
            out.append(nxt)
            logits, state = self(nxt[None].to(device), state, return_state=True)
        self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per character) of ``logits [B, T, V]`` against ``targets [B, T]``."""
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"expected logits [B, T, V] and targets [B, T], got {tuple(logits.shape)}, "
                         f"{tuple(targets.shape)}")
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


class CharChunks(Dataset):
    """``(x [T], y [T])`` windows of ``ids [N]`` with ``y`` shifted by one character.

    With ``n``: ``n`` windows at seeded random offsets (training); without, the
    consecutive non-overlapping windows (evaluation: every character scored once).
    """

    def __init__(self, ids: torch.Tensor, block: int, n: int | None = None, seed: int = 0):
        if ids.ndim != 1 or len(ids) < block + 1:
            raise ValueError(f"need ids [N] with N > block={block}, got {tuple(ids.shape)}")
        self.ids, self.block = ids, block
        if n is None:
            self.starts = torch.arange(0, len(ids) - block, block)
        else:
            g = torch.Generator().manual_seed(offset_seed(seed))  # + MMCOURSE_SEED
            self.starts = torch.randint(0, len(ids) - block, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int):
        s = int(self.starts[i])
        return self.ids[s : s + self.block], self.ids[s + 1 : s + self.block + 1]


def unigram_baseline(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy (nats per character) on ``val_ids`` of the character frequencies of
    ``train_ids`` (add-one smoothed): what a model that ignores all context achieves."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1
    logp = (counts / counts.sum()).log()
    return float(-logp[val_ids].mean())
