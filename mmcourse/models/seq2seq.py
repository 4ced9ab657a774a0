"""A character-level Transformer encoder-decoder (seq2seq), e.g. for date normalisation.

    source chars [B, S] -> embed + sinusoidal positions -> Encoder -> memory [B, S, D]
    target chars so far [B, T] -> embed + positions -> Decoder(memory) -> logits [B, T, V]

Training uses teacher forcing (the decoder sees the true previous characters);
:meth:`Seq2SeqTransformer.greedy_decode` generates one character at a time. With
``return_attention=True`` the model returns every layer's and head's attention weights;
the cross-attention shows which source characters each output character looked at.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmcourse.models.positional import SinusoidalPositionalEncoding
from mmcourse.models.transformer import Decoder, Encoder
from mmcourse.text import Vocab

PAD, BOS, EOS = 0, 1, 2
SEQ2SEQ_SPECIALS = {"pad": "<pad>", "bos": "<bos>", "eos": "<eos>"}  # ids PAD, BOS, EOS


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer over token ids (``PAD`` = 0 in both vocabularies)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 64, n_heads: int = 4,
                 n_enc: int = 2, n_dec: int = 2, d_ff: int = 128, dropout: float = 0.1, max_len: int = 64):
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=PAD)
        self.pos = SinusoidalPositionalEncoding(d_model, max_len)
        self.drop = nn.Dropout(dropout)
        self.encoder = Encoder(n_enc, d_model, n_heads, d_ff, dropout)
        self.decoder = Decoder(n_dec, d_model, n_heads, d_ff, dropout)
        self.head = nn.Linear(d_model, tgt_vocab)

    @staticmethod
    def _check(ids: torch.Tensor, name: str) -> None:
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point():
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"{name} must be integer ids [B, T], got {shape}")

    def encode(self, src: torch.Tensor, return_attention: bool = False):
        """``src [B, S]`` -> ``memory [B, S, D]`` (and the encoder's ``[B, H, S, S]`` per layer)."""
        self._check(src, "src")
        x = self.drop(self.pos(self.src_embed(src)))
        return self.encoder(x, key_mask=src != PAD, return_attention=return_attention)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src: torch.Tensor,
               return_attention: bool = False):
        """``tgt_in [B, T]`` -> logits ``[B, T, V]`` (and self ``[B, H, T, T]``, cross ``[B, H, T, S]`` lists)."""
        self._check(tgt_in, "tgt_in")
        y = self.drop(self.pos(self.tgt_embed(tgt_in)))
        out = self.decoder(y, memory, tgt_key_mask=None, memory_key_mask=src != PAD,
                           return_attention=return_attention)
        if return_attention:
            y, selfs, crosses = out
            return self.head(y), selfs, crosses
        return self.head(out)

    def forward(self, src: torch.Tensor | dict, tgt_in: torch.Tensor | None = None,
                return_attention: bool = False):
        """Teacher forcing: ``src [B, S]``, ``tgt_in [B, T]`` (``<bos>`` + target) -> logits ``[B, T, V]``.

        ``src`` may also be a dict ``{"src", "tgt_in"}`` (how :func:`mmcourse.train.fit` passes
        a batch). With ``return_attention=True`` also returns a dict of per-layer weights:
        ``encoder`` ``[B, H, S, S]``, ``decoder`` ``[B, H, T, T]``, ``cross`` ``[B, H, T, S]``.
        """
        if isinstance(src, dict):
            if not {"src", "tgt_in"} <= src.keys():
                raise ValueError(f"a batch dict needs keys 'src' and 'tgt_in', got {sorted(src)}")
            src, tgt_in = src["src"], src["tgt_in"]
        if tgt_in is None:
            raise ValueError("tgt_in is missing: pass the target ids shifted right (starting with <bos>)")
        if src.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"src and tgt_in have batch sizes {src.shape[0]} and {tgt_in.shape[0]}")
        if return_attention:
            memory, enc = self.encode(src, return_attention=True)
            logits, selfs, crosses = self.decode(tgt_in, memory, src, return_attention=True)
            return logits, {"encoder": enc, "decoder": selfs, "cross": crosses}
        return self.decode(tgt_in, self.encode(src), src)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int = 16, return_attention: bool = False):
        """Generate ``[B, <= max_len]`` ids (after ``<bos>``), most likely character first.

        Finished rows are padded with ``<pad>`` after their ``<eos>``. With
        ``return_attention=True`` also returns the attention dict of the final pass, whose
        ``cross`` entries ``[B, H, T, S]`` show where each generated character looked.
        """
        self.eval()
        memory = self.encode(src)
        out = torch.full((src.shape[0], 1), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            nxt = self.decode(out, memory, src)[:, -1].argmax(-1)  # [B]
            nxt = nxt.masked_fill(done, PAD)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == EOS
            if bool(done.all()):
                break
        if return_attention:
            _, att = self(src, out[:, :-1], return_attention=True)
            return out[:, 1:], att
        return out[:, 1:]


def seq2seq_batch(vocab: Vocab, sources: Sequence[str], targets: Sequence[str]
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``({"src" [N, S], "tgt_in" [N, T]}, tgt_out [N, T])`` for teacher forcing:
    ``tgt_in`` is ``<bos>`` + target, ``tgt_out`` is target + ``<eos>``. ``vocab``:
    ``Vocab.characters(texts, **SEQ2SEQ_SPECIALS)``."""
    if (vocab.pad_id, vocab.bos_id, vocab.eos_id) != (PAD, BOS, EOS):
        raise ValueError(f"the vocabulary needs <pad>, <bos>, <eos> at ids {PAD}, {BOS}, {EOS}: "
                         "build it with Vocab.characters(texts, **SEQ2SEQ_SPECIALS)")
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
    tgt = vocab.batch(targets, bos_eos=True)  # [N, T+1]
    return {"src": vocab.batch(sources), "tgt_in": tgt[:, :-1]}, tgt[:, 1:]


class PairData(torch.utils.data.Dataset):
    """Items ``({"src", "tgt_in"}, tgt_out)`` of a :func:`seq2seq_batch` (for ``DataLoader`` and ``fit``)."""

    def __init__(self, x: dict[str, torch.Tensor], y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return {k: v[i] for k, v in self.x.items()}, self.y[i]


def token_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = PAD) -> torch.Tensor:
    """Cross-entropy over every non-padding position: ``logits [B, T, V]``, ``target [B, T]``."""
    return nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=ignore_index)
