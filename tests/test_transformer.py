"""Encoder/decoder blocks equal PyTorch's layers with copied weights; encoder stacks; the tiny BERT."""

import pytest
import torch
from torch import nn

from mmcourse.models.attention import causal_mask, padding_mask
from mmcourse.models.bert import (
    BERT_SPECIALS,
    IGNORE,
    MASK,
    MaskedLMData,
    TinyBERT,
    mask_tokens,
    masked_accuracy,
    mlm_loss,
    windows,
)
from mmcourse.models.transformer import Decoder, DecoderBlock, Encoder, EncoderBlock
from mmcourse.text import Vocab, tokenize

REF_ENCODER_SUM = 0.477655  # torch.manual_seed(0), torch 2.11 CPU
REF_BERT_LOGIT = -0.164816  # torch.manual_seed(0), torch 2.11 CPU
REF_CHAR_MASKED = 123  # masked characters of 13 x 64 with manual_seed(0)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_block_equals_torch_layer(norm_first, activation):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16)
    keep = padding_mask(torch.tensor([5, 3, 1]), 5)
    ref = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, activation=activation,
                                     batch_first=True, norm_first=norm_first).eval()
    ours = EncoderBlock(16, 4, 32, norm_first=norm_first, activation=activation).load_torch(ref).eval()
    with torch.no_grad():
        y_ref = ref(x, src_key_padding_mask=~keep)
        y, w = ours(x, key_mask=keep, return_attention=True)
    # PyTorch's fast path may zero the padded rows: compare the real tokens.
    torch.testing.assert_close(y[keep], y_ref[keep], atol=1e-5, rtol=1e-5)
    assert w.shape == (3, 4, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 5))
    assert float(w[2, :, :, 1:].abs().max()) == 0.0  # the third sequence has one real token


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_equals_torch_layer(norm_first):
    torch.manual_seed(1)
    y, mem = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    keep = padding_mask(torch.tensor([6, 2]), 6)
    ref = nn.TransformerDecoderLayer(16, 4, 32, activation="gelu", batch_first=True,
                                     norm_first=norm_first).eval()
    ours = DecoderBlock(16, 4, 32, norm_first=norm_first).load_torch(ref).eval()
    with torch.no_grad():
        out_ref = ref(y, mem, tgt_mask=~causal_mask(4), memory_key_padding_mask=~keep)
        out, (w_self, w_cross) = ours(y, mem, memory_key_mask=keep, return_attention=True)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    assert float(w_self.triu(1).abs().max()) == 0.0
    assert float(w_cross[1, :, :, 2:].abs().max()) == 0.0
    assert w_cross.shape == (2, 4, 4, 6)


def test_load_torch_refuses_a_different_layer():
    ref = nn.TransformerEncoderLayer(16, 4, 32, activation="relu", batch_first=True)
    with pytest.raises(ValueError, match="activation"):
        EncoderBlock(16, 4, 32, norm_first=False, activation="gelu").load_torch(ref)
    with pytest.raises(ValueError, match="norm_first"):
        EncoderBlock(16, 4, 32, norm_first=True, activation="relu").load_torch(ref)
    with pytest.raises(ValueError):
        EncoderBlock(16, 4, 32, activation="tanh")


def test_encoder_stack_shapes_and_seeded_value():
    torch.manual_seed(0)
    enc = Encoder(2, 16, 4, 32, dropout=0.0).eval()
    x = torch.linspace(-1, 1, 2 * 5 * 16).view(2, 5, 16)
    with torch.no_grad():
        y, att = enc(x, return_attention=True)
    assert y.shape == (2, 5, 16) and len(att) == 2 and att[0].shape == (2, 4, 5, 5)
    torch.testing.assert_close(y, enc(x))  # return_attention does not change the output
    assert float((y * x).sum()) == pytest.approx(REF_ENCODER_SUM, abs=1e-3)


def test_decoder_is_causal():
    torch.manual_seed(0)
    dec = Decoder(2, 16, 4, 32, dropout=0.0).eval()
    y, mem = torch.randn(1, 5, 16), torch.randn(1, 3, 16)
    y2 = y.clone()
    y2[0, 3:] += 3.0
    with torch.no_grad():
        torch.testing.assert_close(dec(y, mem)[0, :3], dec(y2, mem)[0, :3])


def test_encoder_without_positions_is_permutation_equivariant():
    torch.manual_seed(0)
    enc = Encoder(1, 16, 4, 32, dropout=0.0).eval()
    x = torch.randn(1, 6, 16)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        torch.testing.assert_close(enc(x)[:, perm], enc(x[:, perm]), atol=1e-5, rtol=1e-5)


def test_tokenize_vocab_windows():
    toks = tokenize("To be, or not to be: that is the question. O'er")
    assert toks == ["to", "be", ",", "or", "not", "to", "be", ":", "that", "is", "the", "question", ".", "o'er"]
    v = Vocab.build([toks], max_size=3, **BERT_SPECIALS)
    assert v.itos[:3] == ["[PAD]", "[UNK]", "[MASK]"] and v.itos[3:5] == ["be", "to"]  # ties by code point
    assert v.encode(["to", "zebra"]).tolist() == [4, 1] and v.decode([4, 3, 0]) == "to be"
    w = windows(list(range(10)), 4)
    assert w.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError):
        windows([1, 2], 4)


def test_character_vocab():
    text = "to be, or not to be"
    v = Vocab.characters(text, order="frequency", **BERT_SPECIALS)
    assert len(v) == 3 + len(set(text))
    assert v.itos[3:6] == [" ", "o", "t"]  # most frequent first
    ids = v.encode("to be?")
    assert ids[-1] == 1 and v.decode(ids[:-1]) == "to be"
    w = windows(v.encode(text), 8)
    assert w.shape == (2, 8) and v.decode(w[1]) == "r not to"
    assert v.decode(w.flatten()) == text[:16]


def test_mask_tokens_on_characters():
    """Character windows: 15% of the characters chosen, 80/10/10, never padding; seeded."""
    v = Vocab.characters("to be, or not to be: that is the question. " * 20, order="frequency", **BERT_SPECIALS)
    ids = windows(v.encode("to be, or not to be: that is the question. " * 20), 64)  # [13, 64]
    inputs, labels = mask_tokens(ids, len(v), generator=torch.Generator().manual_seed(0))
    chosen = labels != IGNORE
    assert inputs.shape == labels.shape == (13, 64)
    assert 0.12 < float(chosen.float().mean()) < 0.18
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(inputs[~chosen], ids[~chosen])
    assert int(chosen.sum()) == REF_CHAR_MASKED  # the same masking for the same seed
    again, _ = mask_tokens(ids, len(v), generator=torch.Generator().manual_seed(0))
    assert torch.equal(inputs, again)
    assert int((inputs == MASK).sum()) > 0.7 * int(chosen.sum())


def test_mask_tokens_follows_bert_recipe():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 100, (200, 50), generator=g)
    ids[:, -5:] = 0  # padding is never chosen
    inputs, labels = mask_tokens(ids, 100, p=0.15, generator=g)
    chosen = labels != IGNORE
    assert 0.13 < chosen[:, :-5].float().mean() < 0.17
    assert not chosen[:, -5:].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    share_mask = (inputs[chosen] == MASK).float().mean()
    share_same = (inputs[chosen] == ids[chosen]).float().mean()
    assert 0.76 < share_mask < 0.84 and 0.07 < share_same < 0.14  # ~10% kept (+ random hits)
    x, y = MaskedLMData(ids, 100)[0]
    assert x.shape == y.shape == (50,)


def test_tiny_bert_shapes_loss_and_fill_mask():
    torch.manual_seed(0)
    bert = TinyBERT(50, max_len=12, d_model=16, depth=2, n_heads=2, d_ff=32).eval()
    ids = torch.tensor([[5, 6, MASK, 8, 0, 0], [9, MASK, 11, 12, 13, MASK]])
    with torch.no_grad():
        logits, att = bert(ids, return_attention=True)
    assert logits.shape == (2, 6, 50) and len(att) == 2 and att[0].shape == (2, 2, 6, 6)
    assert float(att[0][0, :, :, 4:].abs().max()) == 0.0  # padding is never attended to
    assert bert.out.weight is bert.tok.weight  # tied embeddings
    assert float(logits[1, 1, 7]) == pytest.approx(REF_BERT_LOGIT, abs=1e-4)
    filled = bert.fill_mask(ids, k=2)
    assert [p for p, _, _ in filled[1]] == [1, 5] and len(filled[1][0][1]) == 2
    assert filled[0][0][1][0] == int(logits[0, 2].argmax())
    labels = torch.full_like(ids, IGNORE)
    labels[0, 2], labels[1, 1] = int(logits[0, 2].argmax()), 3
    assert masked_accuracy(logits, labels) == 0.5
    expected = nn.functional.cross_entropy(logits[[0, 1], [2, 1]], torch.tensor([labels[0, 2], 3]))
    torch.testing.assert_close(mlm_loss(logits, labels), expected)
    with torch.no_grad():  # logits only at the masked positions: the same loss
        torch.testing.assert_close(bert.masked_loss(ids, labels), expected)
    with pytest.raises(ValueError):
        bert.masked_loss(ids, labels[:, :3])
    with pytest.raises(ValueError):
        bert(torch.randn(2, 6))
    with pytest.raises(ValueError, match="longer than the positional table"):
        bert(torch.ones(1, 13, dtype=torch.long))
    sinus = TinyBERT(50, max_len=12, d_model=16, depth=2, n_heads=2, d_ff=32, positions="sinusoidal").eval()
    assert sinus(ids).shape == (2, 6, 50) and not any("pos" in n for n, _ in sinus.named_parameters())
    with pytest.raises(ValueError, match="positions"):
        TinyBERT(50, positions="rotary")


def test_tiny_bert_learns_a_copy_pattern():
    """Sequences 'a b a b ...': a masked token is its neighbours' partner; a tiny BERT learns it."""
    g = torch.Generator().manual_seed(0)
    a = torch.randint(3, 23, (256, 1), generator=g)
    ids = torch.cat([a, a + 20] * 4, dim=1)  # [256, 8]: a, a+20, a, a+20, ...
    torch.manual_seed(0)
    bert = TinyBERT(43, max_len=8, d_model=32, depth=1, n_heads=2, d_ff=64, dropout=0.0)
    opt = torch.optim.Adam(bert.parameters(), lr=3e-3)
    for _ in range(120):
        x, y = mask_tokens(ids, 43, p=0.3, generator=g)
        loss = mlm_loss(bert(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = mask_tokens(ids, 43, p=0.3, mask_frac=1.0, random_frac=0.0, generator=g)
    bert.eval()
    with torch.no_grad():
        assert masked_accuracy(bert(x), y) > 0.9  # chance: 1/40
