"""Sequence models: packing, CNN+RNN, the char LM and its vocabulary, the sequence plots."""

import math
from collections import Counter

import pytest
import torch
from ipywidgets import FloatSlider
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from mmcourse.audio import FeatureConfig, Features
from mmcourse.data import tiny_shakespeare
from mmcourse.models.sequence import (
    CNNRNN,
    CharChunks,
    CharLM,
    PaddedSequences,
    SequenceClassifier,
    frame_lengths,
    lm_loss,
    masked_mean_std,
    unigram_baseline,
)
from mmcourse.text import Vocab, split_text
from mmcourse.viz import Panel
from mmcourse.viz.sequences import (
    draw_packing,
    draw_sampling,
    plot_gradient_norms,
    plot_until_diverged,
)


def _padded_batch(seed=0, lengths=(9, 3, 6, 1), features=5):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    x = torch.randn(len(lengths), int(lengths.max()), features, generator=g)
    for i, n in enumerate(lengths):
        x[i, n:] = 100.0  # loud padding: it must not matter
    return x, lengths


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("gru", False), ("lstm", True)])
def test_packed_batch_equals_each_sequence_alone(cell, bidirectional):
    torch.manual_seed(0)
    model = SequenceClassifier(5, 4, hidden=8, num_layers=2, cell=cell, bidirectional=bidirectional).eval()
    x, lengths = _padded_batch()
    with torch.no_grad():
        batch = model(x, lengths)  # [B, K]
        alone = torch.cat([model(x[i : i + 1, : lengths[i]]) for i in range(len(lengths))])
        as_dict = model({"frames": x, "lengths": lengths})
    assert batch.shape == (4, 4)
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(as_dict, batch)
    # Without packing, the state runs through the padding and the answer changes.
    with torch.no_grad():
        _, h = model.rnn(x)
        h = h[0] if isinstance(h, tuple) else h
        d = 2 if bidirectional else 1
        unpacked = model.head(torch.cat(list(h[-d:]), dim=-1))
    assert (unpacked - alone).abs().max() > 1e-2


def test_sequence_classifier_seeded_reference_values():
    torch.manual_seed(0)
    model = SequenceClassifier(3, 2, hidden=4).eval()
    x = torch.linspace(-1, 1, 2 * 5 * 3).reshape(2, 5, 3)
    with torch.no_grad():
        out = model(x, torch.tensor([5, 2]))
    expected = torch.tensor([[-0.1752, 0.1874], [-0.1413, 0.2816]])
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_sequence_classifier_bad_input():
    model = SequenceClassifier(5, 3)
    x, lengths = _padded_batch()
    with pytest.raises(ValueError, match="frames"):
        model(x[..., :4], lengths)  # wrong number of features
    with pytest.raises(ValueError, match="frames"):
        model(x[0], lengths)  # rank 2
    with pytest.raises(ValueError, match="lengths must be in"):
        model(x, torch.tensor([10, 3, 6, 1]))  # longer than the padded batch
    with pytest.raises(ValueError, match="lengths must be in"):
        model(x, torch.tensor([9, 0, 6, 1]))
    with pytest.raises(ValueError, match="expected lengths"):
        model(x, torch.tensor([9, 3]))
    with pytest.raises(ValueError, match="missing"):
        model({"frames": x})
    with pytest.raises(ValueError, match="cell"):
        SequenceClassifier(5, 3, cell="transformer")


def test_padded_sequences_collate_to_dict_batches():
    x, lengths = _padded_batch()
    ds = PaddedSequences(x, lengths, torch.arange(4))
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert set(xb) == {"frames", "lengths"} and xb["frames"].shape == (4, 9, 5)
    assert xb["lengths"].tolist() == [9, 3, 6, 1] and yb.tolist() == [0, 1, 2, 3]
    PaddedSequences(x.transpose(1, 2), lengths, torch.arange(4), time_dim=2)  # [N, C, T] is fine too
    with pytest.raises(ValueError, match="lengths must be in"):
        PaddedSequences(x.transpose(1, 2), lengths, torch.arange(4))  # time is dim 2 here
    with pytest.raises(ValueError, match="differ in length"):
        PaddedSequences(x, lengths, torch.arange(3))


def test_frame_lengths_match_the_feature_extractor():
    cfg = FeatureConfig("mfcc", hop_length=160)
    feats = Features(cfg)
    for n in (1149, 4000, 8000):
        frames = feats(torch.randn(n)).shape[-1]
        assert frame_lengths(torch.tensor([n]), cfg.hop_length).item() == frames
    assert frame_lengths(torch.tensor([8000, 9000]), 160, max_frames=51).tolist() == [51, 51]


def test_masked_mean_std_uses_only_real_frames():
    x, lengths = _padded_batch()
    mean, std = masked_mean_std(x, lengths)
    real = torch.cat([x[i, :n] for i, n in enumerate(lengths)])  # [19, 5]
    torch.testing.assert_close(mean, real.mean(0))
    torch.testing.assert_close(std, real.std(0))
    assert mean.abs().max() < 10  # the padding (100) did not leak in


def test_cnn_rnn_shapes_lengths_and_reference_values():
    torch.manual_seed(0)
    model = CNNRNN(6, 3, channels=8, hidden=5).eval()
    x = torch.linspace(-2, 2, 2 * 6 * 20).reshape(2, 6, 20)  # [B, C, T]
    assert model.feature_maps(x).shape == (2, 8, 5)  # time / 4
    with torch.no_grad():
        out = model(x, torch.tensor([20, 20]))
        short = model(x, torch.tensor([20, 8]))
        as_dict = model({"frames": x, "lengths": torch.tensor([20, 8])})
    assert out.shape == (2, 3)
    torch.testing.assert_close(out[0], short[0])  # the first recording is unchanged
    assert not torch.allclose(out[1], short[1])  # the GRU stops after 8 // 4 = 2 steps
    torch.testing.assert_close(as_dict, short)
    expected = torch.tensor([[-0.2552, 0.4217, -0.1049], [-0.2961, 0.4803, -0.1272]])
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="spectrogram"):
        model(x.transpose(1, 2))
    with pytest.raises(ValueError, match="at least 4 frames"):
        model(x[..., :3])


def test_char_lm_state_carrying_and_sampling():
    torch.manual_seed(0)
    lm = CharLM(7, embed=4, hidden=8).eval()
    idx = torch.randint(0, 7, (2, 10))
    with torch.no_grad():
        full = lm(idx)
        first, state = lm(idx[:, :6], return_state=True)
        second = lm(idx[:, 6:], state)
    assert full.shape == (2, 10, 7)
    torch.testing.assert_close(torch.cat([first, second], 1), full, atol=1e-6, rtol=0)
    prompt = torch.tensor([1, 2, 3])
    a = lm.sample(prompt, 20, 1.0, torch.Generator().manual_seed(3))
    b = lm.sample(prompt, 20, 1.0, torch.Generator().manual_seed(3))
    assert a.shape == (20,) and a.dtype == torch.int64 and torch.equal(a, b)
    # At a tiny temperature sampling is greedy decoding.
    greedy, seq = [], prompt.clone()
    with torch.no_grad():
        for _ in range(10):
            nxt = lm(seq[None])[0, -1].argmax()
            greedy.append(int(nxt))
            seq = torch.cat([seq, nxt[None]])
    assert lm.sample(prompt, 10, 1e-4, torch.Generator().manual_seed(0)).tolist() == greedy
    probs = lm.next_probs(prompt, 0.5)
    assert probs.shape == (7,) and abs(float(probs.sum()) - 1) < 1e-5
    with pytest.raises(ValueError, match="ids"):
        lm(torch.tensor([[7]]))
    with pytest.raises(ValueError, match="ids"):
        lm(torch.zeros(2, 3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="temperature"):
        lm.sample(prompt, 5, 0.0)
    with pytest.raises(ValueError, match="prompt"):
        lm.sample(torch.tensor([], dtype=torch.int64), 5)


def test_lm_loss_and_unigram_baseline_by_hand():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    by_hand = -torch.log_softmax(logits, -1).gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(lm_loss(logits, targets), by_hand)
    with pytest.raises(ValueError, match="targets"):
        lm_loss(logits, targets[:, :2])
    train, val = "aaab", "abcc"
    vocab = Vocab.characters(train + val)  # a, b, c
    counts = Counter(train)
    p = {ch: (counts[ch] + 1) / (len(train) + 3) for ch in "abc"}
    expected = -sum(math.log(p[ch]) for ch in val) / len(val)
    got = unigram_baseline(vocab.encode(train), vocab.encode(val), len(vocab))
    assert abs(got - expected) < 1e-9


def test_char_chunks_are_shifted_windows():
    ids = torch.arange(50)
    ds = CharChunks(ids, 8, n=5, seed=0)
    for x, y in ds:
        assert x.shape == y.shape == (8,) and torch.equal(y, x + 1)
    every = CharChunks(ids, 8)  # consecutive windows, each character scored once
    assert len(every) == 6 and every[1][0].tolist() == list(range(8, 16))
    with pytest.raises(ValueError, match="block"):
        CharChunks(torch.arange(5), 8)


def test_char_vocab_round_trips_tiny_shakespeare():
    text = tiny_shakespeare()
    vocab = Vocab.characters(text)
    assert len(vocab) == 65 and vocab.itos == sorted(vocab.itos)
    chunk = text[:5000]
    ids = vocab.encode(chunk)
    assert ids.dtype == torch.int64 and ids.shape == (5000,)
    assert vocab.decode(ids) == chunk
    train, val = split_text(text, 0.1)
    assert train + val == text and len(val) == len(text) - int(len(text) * 0.9)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("naïve")
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([65])
    with pytest.raises(ValueError, match="distinct"):
        Vocab("aa")
    with pytest.raises(ValueError, match="val_fraction"):
        split_text(text, 1.5)


def test_sampling_panel_redraws_and_plots_validate_input():
    torch.manual_seed(0)
    vocab = Vocab.characters("abcdefgh \n")
    lm = CharLM(len(vocab), embed=4, hidden=8)
    prompt = vocab.encode("abc")

    def draw(fig, temperature):
        ids = lm.sample(prompt, 40, temperature, torch.Generator().manual_seed(0))
        draw_sampling(fig, lm.next_probs(prompt, temperature), vocab.itos, vocab.decode(ids), temperature)

    panel = Panel(draw, temperature=FloatSlider(value=1.0, min=0.1, max=2.0))
    before = panel.image.value
    after = panel.set(temperature=0.1)
    assert panel.draws == 2 and before != after and after == panel.image.value
    fig = Figure()
    draw_packing(fig, torch.tensor([5, 2, 7]))
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="probs"):
        draw_sampling(Figure(), torch.ones(3), ["a", "b"], "ab", 1.0)
    with pytest.raises(ValueError, match="lengths"):
        draw_packing(Figure(), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"\[T\]"):
        plot_gradient_norms(Figure().subplots(), {"x": torch.ones(2, 2)})


def test_packing_figure_counts_the_cells_of_the_padded_batch():
    fig = Figure()
    draw_packing(fig, torch.tensor([5, 2, 7]), padded_length=10)
    assert "3 x 10 = 30 cells, 14 real" in fig.axes[0].get_title()
    assert fig.axes[0].images[0].get_array().shape == (3, 10)
    assert sum(p.get_height() for p in fig.axes[1].patches) == 14  # packed: only the real frames
    draw_packing(fig := Figure(), torch.tensor([5, 2, 7]))  # default: padded to the longest
    assert "= 21 cells" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="padded_length"):
        draw_packing(Figure(), torch.tensor([5, 2, 7]), padded_length=6)


def test_plot_until_diverged_stops_at_the_first_non_finite_value():
    ax = Figure().subplots()
    assert plot_until_diverged(ax, [3.0, 2.0, float("inf"), float("nan")], "a") == 2
    assert list(ax.lines[0].get_ydata()) == [3.0, 2.0]
    assert ax.lines[1].get_xdata()[0] == 2  # the red cross
    assert plot_until_diverged(ax, [1.0, 0.5], "b") is None
