"""The recogniser's rules for awkward input, chunked long audio, and the offline baselines."""

import warnings

import numpy as np
import pytest
import torch

from mmcourse.models import count_parameters
from mmcourse.models.asr import CTCRecognizer, ctc_objective, output_lengths, pack_targets
from mmcourse.speech.lm import NGramLM
from mmcourse.speech.recognizer import Recognizer, as_mono


@pytest.fixture(scope="module")
def rec():
    torch.manual_seed(0)
    return Recognizer(CTCRecognizer(), NGramLM(2).fit(["123", "4567"]))


def test_model_shapes_size_and_loss():
    torch.manual_seed(0)
    m = CTCRecognizer()
    assert count_parameters(m) < 2_000_000
    x, lengths = torch.randn(3, 101, 40), torch.tensor([101, 60, 9])
    lp = m((x, lengths))
    assert lp.shape == (3, 26, 11) and torch.allclose(lp.exp().sum(-1), torch.ones(3, 26), atol=1e-5)
    assert output_lengths(lengths).tolist() == [26, 15, 3]
    y = pack_targets(lengths, [[1, 2], [3], [0, 0]])
    assert y.tolist()[1] == [60, 1, 4, -1]
    loss = ctc_objective(lp, y)
    ref = torch.nn.functional.ctc_loss(lp.transpose(0, 1), torch.tensor([[2, 3], [4, 0], [1, 1]]),
                                       torch.tensor([26, 15, 3]), torch.tensor([2, 1, 2]))
    assert torch.isclose(loss, ref)
    with pytest.raises(ValueError, match=r"\[B, T, 40\]"):
        m(torch.randn(2, 40, 50).transpose(0, 2))


def test_silence_short_and_odd_input(rec):
    assert rec.transcribe(torch.zeros(8000)) == ""  # silence: no words, defined
    out = rec.transcribe(torch.randn(50) * 0.1)  # shorter than one 40 ms frame: padded, decoded
    assert isinstance(out, str) and set(out) <= set("0123456789")
    with pytest.warns(UserWarning, match="resampled"):
        w = as_mono(torch.randn(16000), 16000)
    assert w.shape == (8000,)
    with pytest.warns(UserWarning, match="2 channels"):
        stereo = as_mono(torch.randn(2, 800))
    assert stereo.shape == (800,)
    with pytest.warns(UserWarning, match="2 channels"):
        assert as_mono(np.random.randn(800, 2).astype(np.float32)).shape == (800,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pcm = as_mono(np.array([0, 16384, -32768], dtype=np.int16))
    assert pcm.tolist() == [0.0, 0.5, -1.0]
    with pytest.raises(ValueError, match="empty"):
        rec.transcribe(torch.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        rec.transcribe(torch.full((100,), float("nan")))
    with pytest.raises(ValueError, match="mono"):
        rec.transcribe(torch.zeros(2, 2, 100))
    with pytest.raises(ValueError, match="method"):
        rec.decode(torch.zeros(5, 11).log_softmax(-1), "viterbi")
    with pytest.raises(ValueError, match="language model"):
        Recognizer(CTCRecognizer()).decode(torch.zeros(5, 11).log_softmax(-1), "beam_lm")


def test_long_emissions_stitch_to_the_full_length(rec):
    wave = torch.randn(8000 * 21) * 0.1
    em = rec.long_emissions(wave, chunk_s=8, overlap_s=2)
    assert em.shape == (int(output_lengths(torch.tensor(wave.numel() // 80 + 1))), 11)
    whole = rec.emissions([wave])[0]
    assert whole.shape == em.shape
    with pytest.raises(ValueError, match="overlap"):
        rec.long_emissions(wave, chunk_s=2, overlap_s=3)


def test_pocketsphinx_and_espeak_load_offline():
    from mmcourse.speech.baseline import PocketSphinx, espeak

    wave = espeak("one two three", voice="en-us", rate=140, sample_rate=16000)
    assert wave.ndim == 1 and 0.5 < wave.numel() / 16000 < 3 and wave.abs().max() > 0.1
    assert PocketSphinx(grammar=True).transcribe(wave, 16000) == "one two three"
    assert isinstance(PocketSphinx(grammar=False).transcribe(wave, 16000), str)
    with pytest.raises(ValueError, match="voice"):
        espeak("one", voice="xx-nonexistent")
    with pytest.raises(ValueError, match="empty"):
        espeak("  ")


def test_length_batches_cover_everything_once():
    from mmcourse.speech.batches import CTCData, LengthBatches, collate

    lengths = [5, 50, 7, 48, 20, 22, 6, 49]
    s = LengthBatches(lengths, batch_size=2, seed=0, sortagrad=True)
    first, second = list(s), list(s)
    assert sorted(i for b in first for i in b) == list(range(8)) == sorted(i for b in second for i in b)
    assert [max(lengths[i] for i in b) for b in first] == sorted(max(lengths[i] for i in b) for b in first)
    assert all(abs(lengths[a] - lengths[b]) < 31 for a, b in first)  # similar lengths together (jitter < 30)
    data = CTCData([torch.zeros(n, 40) for n in (3, 5)], [[1], [2, 3]])
    (x, lens), y = collate([data[0], data[1]])
    assert x.shape == (2, 5, 40) and lens.tolist() == [3, 5] and y.tolist() == [[3, 1, 2, -1], [5, 2, 3, 4]]


@pytest.mark.parametrize("rnn_hidden", [0, 16])
def test_padded_batch_gives_each_utterance_its_own_emissions(rnn_hidden):
    torch.manual_seed(0)
    m = CTCRecognizer(rnn_hidden=rnn_hidden).eval()
    a, b = torch.randn(1, 120, 40), torch.randn(1, 57, 40)
    x = torch.zeros(2, 120, 40)
    x[0], x[1, :57] = a[0], b[0]
    with torch.no_grad():
        both = m((x, torch.tensor([120, 57])))
        alone = m((b, torch.tensor([57])))
    assert torch.allclose(both[1, :15], alone[0], atol=1e-5)
    assert torch.allclose(both[0], m((a, torch.tensor([120])))[0], atol=1e-5)
