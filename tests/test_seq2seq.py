"""Date pairs (deterministic, held-out formats disjoint from training), the seq2seq Transformer,
and the cross-attention widget."""

import datetime as dt

import pytest
import torch

from mmcourse.data.dates import (
    TEST_FORMATS,
    TRAIN_FORMATS,
    date_pairs,
    date_splits,
    field_spans,
    format_parts,
    format_regex,
    matches_any,
    ordinal,
    render,
)
from mmcourse.models.seq2seq import (
    BOS,
    EOS,
    PAD,
    SEQ2SEQ_SPECIALS,
    PairData,
    Seq2SeqTransformer,
    seq2seq_batch,
    token_loss,
)
from mmcourse.text import Vocab
from mmcourse.viz.attention import seq2seq_attention_panel

REF_SEQ2SEQ_LOGIT = 0.151133  # torch.manual_seed(0), torch 2.11 CPU


def test_render_and_ordinals():
    d = dt.date(2021, 3, 3)
    assert render(d, "{dth} of {month} {yyyy}") == "3rd of March 2021"
    assert render(d, "{weekday}, {d} {mon} {yyyy}") == "Wednesday, 3 Mar 2021"
    assert render(d, "{dd}/{mm}/{yyyy}") == "03/03/2021"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]  # fmt: skip
    with pytest.raises(ValueError, match="unknown field"):
        render(d, "{day}")


def test_every_format_regex_matches_its_own_renderings():
    d = dt.date(1999, 12, 31)
    for fmt in TRAIN_FORMATS + TEST_FORMATS:
        assert format_regex(fmt).fullmatch(render(d, fmt)), fmt


def test_generator_is_deterministic_under_a_seed():
    a, b = date_splits(300, 50, 100, seed=3), date_splits(300, 50, 100, seed=3)
    assert a == b
    assert date_splits(300, 50, 100, seed=4)["train"] != a["train"]
    for p in a["train"][:50]:
        assert dt.date.fromisoformat(p.target).isoformat() == p.target
        assert render(dt.date.fromisoformat(p.target), p.format) == p.source


def test_held_out_formats_never_appear_in_training():
    s = date_splits(2000, 200, 1000, seed=0)
    assert not set(TRAIN_FORMATS) & set(TEST_FORMATS)
    train_formats = {p.format for p in s["train"] + s["val"]}
    test_formats = {p.format for p in s["test"]}
    assert train_formats == set(TRAIN_FORMATS) and test_formats == set(TEST_FORMATS)
    # No test source could have been written by a training format (e.g. "3rd of May 2021").
    assert not any(matches_any(p.source, TRAIN_FORMATS) for p in s["test"])
    assert not {p.source for p in s["test"]} & {p.source for p in s["train"]}
    # ... and such ambiguous strings do exist, so the exclusion is doing something.
    assert matches_any("3rd of May 2021", TRAIN_FORMATS)
    assert len(date_pairs(200, TEST_FORMATS, seed=0)) == 200
    assert any(matches_any(p.source, TRAIN_FORMATS) for p in date_pairs(500, TEST_FORMATS, seed=0))


def test_held_out_formats_recombine_training_parts():
    """Every field and separator of a held-out format occurs in a training format; the unpadded
    numeric day and month each occur next to '/' in training, but never together."""
    train_parts = set().union(*(format_parts(f) for f in TRAIN_FORMATS))
    assert format_parts("{d}/{m}/{yyyy}") == {"{d}", "{m}", "{yyyy}", "/"}
    for fmt in TEST_FORMATS:
        assert format_parts(fmt) <= train_parts, fmt
    assert "{d}/{mm}/{yyyy}" in TRAIN_FORMATS and "{dd}/{m}/{yyyy}" in TRAIN_FORMATS
    assert not matches_any("3/4/2021", TRAIN_FORMATS) and matches_any("3/04/2021", TRAIN_FORMATS)


def test_field_spans_locate_day_month_and_year():
    assert field_spans("3rd of Mar 2021", "{dth} of {mon} {yyyy}") == {"day": (0, 3), "month": (7, 10),
                                                                        "year": (11, 15)}
    assert field_spans("Wednesday, 3 Mar 2021", "{weekday}, {d} {mon} {yyyy}")["day"] == (11, 12)
    for p in date_splits(300, 50, 300, seed=0)["test"]:
        spans = field_spans(p.source, p.format)
        year, month, day = p.target.split("-")
        assert p.source[slice(*spans["year"])] == year
        assert p.source[slice(*spans["day"])].rstrip("stndrh").zfill(2) == day
        assert spans["day"][1] <= spans["month"][0] or spans["month"][1] <= spans["day"][0]
        assert month in {p.source[slice(*spans["month"])].zfill(2)} or p.source[slice(*spans["month"])][:3].isalpha()
    with pytest.raises(ValueError, match="cannot produce"):
        field_spans("3/4/2021", "{dd}/{mm}/{yyyy}")


def test_heatmap_has_a_colour_bar():
    from matplotlib.figure import Figure

    from mmcourse.viz.attention import draw_heatmap

    fig = Figure()
    draw_heatmap(fig.add_subplot(), torch.softmax(torch.randn(3, 4), -1), list("abcd"), list("xyz"))
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "attention weight"
    fig = Figure()
    draw_heatmap(fig.add_subplot(), torch.ones(2, 2), colorbar=False)
    assert len(fig.axes) == 1


def test_char_vocab_and_batches():
    v = Vocab.characters(["12 May", "2021-05-12"], **SEQ2SEQ_SPECIALS)
    assert v.itos[:3] == ["<pad>", "<bos>", "<eos>"] and len(v) == 3 + len(set("12 May2021-05-12"))
    ids = v.encode("12 May", bos_eos=True)
    assert ids[0] == BOS and ids[-1] == EOS and v.decode(ids) == "12 May"
    assert v.decode([v.stoi["1"], EOS, v.stoi["2"]]) == "1"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.encode("June")
    x, y = seq2seq_batch(v, ["12 May", "1 May"], ["2021-05-12", "2021-05-01"])
    assert x["src"].shape == (2, 6) and int(x["src"][1, -1]) == PAD
    assert x["tgt_in"].shape == y.shape == (2, 11)
    assert int(x["tgt_in"][0, 0]) == BOS and int(y[0, -1]) == EOS
    assert torch.equal(x["tgt_in"][:, 1:], y[:, :-1])
    assert len(PairData(x, y)) == 2


def test_seq2seq_shapes_attention_and_seeded_value():
    torch.manual_seed(0)
    m = Seq2SeqTransformer(20, 15, d_model=16, n_heads=2, n_enc=2, n_dec=1, d_ff=32).eval()
    src = torch.tensor([[3, 4, 5, 6, 0], [7, 8, 9, 10, 11]])
    tgt = torch.tensor([[BOS, 3, 4], [BOS, 5, 6]])
    with torch.no_grad():
        logits, att = m(src, tgt, return_attention=True)
    assert logits.shape == (2, 3, 15)
    assert [len(att[k]) for k in ("encoder", "decoder", "cross")] == [2, 1, 1]
    assert att["cross"][0].shape == (2, 2, 3, 5) and att["decoder"][0].shape == (2, 2, 3, 3)
    assert float(att["cross"][0][0, :, :, 4].abs().max()) == 0.0  # padding ignored
    torch.testing.assert_close(logits, m({"src": src, "tgt_in": tgt}))
    assert float(logits[1, 2, 4]) == pytest.approx(REF_SEQ2SEQ_LOGIT, abs=1e-4)
    # teacher forcing is causal: a later target token does not change earlier logits
    tgt2 = tgt.clone()
    tgt2[:, 2] = 9
    torch.testing.assert_close(m(src, tgt2)[:, :2], logits[:, :2])
    out, att = m.greedy_decode(src, max_len=4, return_attention=True)
    assert out.shape[0] == 2 and out.shape[1] <= 4 and att["cross"][0].shape[2] == out.shape[1]


@pytest.mark.parametrize("bad", [
    lambda m: m(torch.zeros(2, 5, dtype=torch.long)),  # tgt_in missing
    lambda m: m({"src": torch.zeros(2, 5, dtype=torch.long)}),  # key missing
    lambda m: m(torch.zeros(2, 5), torch.zeros(2, 3, dtype=torch.long)),  # floats
    lambda m: m(torch.zeros(5, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)),  # rank
    lambda m: m(torch.zeros(2, 5, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long)),  # batch
    lambda m: m(torch.ones(1, 70, dtype=torch.long), torch.ones(1, 3, dtype=torch.long)),  # too long
])
def test_seq2seq_bad_input(bad):
    m = Seq2SeqTransformer(20, 15, d_model=16, n_heads=2, n_enc=1, n_dec=1, d_ff=16, max_len=64)
    with pytest.raises(ValueError):
        bad(m)


def test_seq2seq_learns_to_reverse():
    """A small real training run: reversing 4-letter strings, well above chance."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(3, 9, (1024, 4), generator=g)
    tgt = torch.cat([torch.full((1024, 1), BOS), src.flip(1), torch.full((1024, 1), EOS)], dim=1)
    torch.manual_seed(0)
    m = Seq2SeqTransformer(9, 9, d_model=32, n_heads=2, n_enc=1, n_dec=1, d_ff=64, dropout=0.0)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for i in range(120):
        b = slice((i * 128) % 1024, (i * 128) % 1024 + 128)
        loss = token_loss(m(src[b], tgt[b, :-1]), tgt[b, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = m.greedy_decode(src[:200], max_len=5)
    assert (out[:, :5] == tgt[:200, 1:]).all(1).float().mean() > 0.9  # chance: 6^-4


def test_seq2seq_panel_redraws():
    cross = [torch.softmax(torch.randn(2, 2, 5, 10, generator=torch.Generator().manual_seed(i)), -1)
             for i in range(2)]
    panel = seq2seq_attention_panel(["3 May 2021", "1.2.2003"], ["2021", "2003"], cross)
    png0 = panel.image.value
    png1 = panel.set(example=1)
    assert png1 != png0 and "1.2.2003" in panel.caption.value
    png2 = panel.set(layer=0, head=1)
    assert png2 != png1
    with pytest.raises(ValueError):
        seq2seq_attention_panel(["a"], ["b", "c"], cross)
