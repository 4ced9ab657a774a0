"""Solutions to the exercises of chapter 05 (attention and Transformers). Each asserts its answer."""

from __future__ import annotations

import math

import torch

from mmcourse.models.attention import scaled_dot_product_attention
from mmcourse.models.positional import SinusoidalPositionalEncoding
from mmcourse.models.transformer import DecoderBlock, Encoder


def _entropy(w: torch.Tensor) -> torch.Tensor:  # [..., T] rows of probabilities -> [...]
    return -(w * w.clamp_min(1e-30).log()).sum(-1)


def exercise_1() -> dict[str, float]:
    """Why sqrt(d): without it, q.k has standard deviation sqrt(d) (about 23 for d = 512), the
    softmax saturates (nearly one-hot rows, low entropy) and its gradient vanishes."""
    d, t = 512, 16
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(64, t, d, generator=g), torch.randn(64, t, d, generator=g)
    v = torch.randn(64, t, d, generator=g)
    _, w_scaled = scaled_dot_product_attention(q, k, v)  # divides by sqrt(d)
    _, w_raw = scaled_dot_product_attention(q * math.sqrt(d), k, v)  # undoes the scaling
    raw_scores = q @ k.transpose(1, 2)
    out = {
        "score_std_unscaled": float(raw_scores.std()),
        "score_std_scaled": float((raw_scores / math.sqrt(d)).std()),
        "entropy_scaled": float(_entropy(w_scaled).mean()),
        "entropy_unscaled": float(_entropy(w_raw).mean()),
        "max_weight_scaled": float(w_scaled.max(-1).values.mean()),
        "max_weight_unscaled": float(w_raw.max(-1).values.mean()),
    }
    # The softmax's Jacobian is diag(w) - w w^T: near one-hot rows make it near zero.
    def jac_norm(scores: torch.Tensor) -> float:  # mean over 16 rows of ||d softmax / d scores||
        rows = scores[0]  # [T, T]
        jacs = [torch.autograd.functional.jacobian(lambda z: torch.softmax(z, -1), r) for r in rows]
        return float(torch.stack([j.norm() for j in jacs]).mean())
    out["softmax_jacobian_scaled"] = jac_norm(raw_scores / math.sqrt(d))
    out["softmax_jacobian_unscaled"] = jac_norm(raw_scores)
    assert 20 < out["score_std_unscaled"] < 26 and 0.9 < out["score_std_scaled"] < 1.1
    assert out["entropy_unscaled"] < 0.5 * out["entropy_scaled"]  # much peakier
    assert out["max_weight_unscaled"] > 0.8 > out["max_weight_scaled"]
    assert out["softmax_jacobian_unscaled"] < 0.5 * out["softmax_jacobian_scaled"]
    return out


def exercise_2() -> dict[str, float]:
    """Self-attention is permutation equivariant; positional encodings break the symmetry."""
    torch.manual_seed(0)
    enc = Encoder(2, 32, 4, 64, dropout=0.0).eval()
    pos = SinusoidalPositionalEncoding(32, max_len=50)
    x = torch.randn(2, 10, 32)  # [B, T, D]
    perm = torch.randperm(10)
    with torch.no_grad():
        plain = float((enc(x)[:, perm] - enc(x[:, perm])).abs().max())
        with_pos = float((enc(pos(x))[:, perm] - enc(pos(x[:, perm]))).abs().max())
    assert plain < 1e-5, plain  # permuting inputs just permutes outputs
    assert with_pos > 1e-2, with_pos  # order now matters
    return {"max_diff_without_positions": plain, "max_diff_with_positions": with_pos}


def exercise_3() -> dict[str, float]:
    """Causal decoding: changing tokens 7..9 changes only outputs 7..9; and greedy decoding equals
    teacher forcing on the model's own output (a small date model trained briefly)."""
    from mmcourse.config import pick
    from mmcourse.data.dates import date_splits
    from mmcourse.models.seq2seq import (
        SEQ2SEQ_SPECIALS,
        PairData,
        Seq2SeqTransformer,
        seq2seq_batch,
        token_loss,
    )
    from mmcourse.text import Vocab
    from mmcourse.train import fit, loaders

    torch.manual_seed(0)
    block = DecoderBlock(32, 4, 64, dropout=0.0).eval()
    y, memory = torch.randn(1, 10, 32), torch.randn(1, 6, 32)
    y2 = y.clone()
    y2[:, 7:] = torch.randn(1, 3, 32)
    with torch.no_grad():
        change = (block(y, memory) - block(y2, memory)).abs().amax(-1)[0]  # [T]
    assert float(change[:7].max()) < 1e-6 and bool((change[7:] > 1e-3).all())

    pairs = date_splits(pick(fast=1500, full=4000), 100, 0, seed=1)
    vocab = Vocab.characters([p.source + p.target for p in pairs["train"]], **SEQ2SEQ_SPECIALS)
    data = PairData(*seq2seq_batch(vocab, [p.source for p in pairs["train"]], [p.target for p in pairs["train"]]))
    model = Seq2SeqTransformer(len(vocab), len(vocab), d_model=32, n_heads=2, n_enc=1, n_dec=1, d_ff=64)
    fit(model, loaders(data, batch_size=64), epochs=pick(fast=2, full=4), lr=3e-3, loss_fn=token_loss,
        progress=False)
    src = vocab.batch([p.source for p in pairs["val"]])
    out = model.greedy_decode(src, max_len=12)  # [B, T]
    bos = torch.full((len(out), 1), 1)
    with torch.no_grad():
        forced = model(src, torch.cat([bos, out[:, :-1]], dim=1)).argmax(-1)  # [B, T]
    real = out != 0  # positions generated before <eos> (padding after it is not predicted)
    agree = float((forced[real] == out[real]).float().mean())
    assert agree > 0.99, agree  # 1.0 up to float rounding (a near-tie could flip one argmax)
    return {"max_change_before_edit": float(change[:7].max()), "greedy_equals_teacher_forcing": agree}
