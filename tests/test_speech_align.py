"""Our Viterbi forced alignment against torchaudio.functional.forced_align, and word segments."""

import pytest
import torch
import torchaudio

from mmcourse.speech.align import forced_align, segments
from mmcourse.speech.ctc import collapse


@pytest.mark.parametrize("seed, labels", [(0, [1, 2, 3]), (1, [2, 2]), (2, [1]), (3, [3, 1, 3, 3, 2]), (4, [])])
def test_matches_torchaudio(seed, labels):
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(25, 4, generator=g) * 2).log_softmax(-1)
    path, score = forced_align(lp, labels)
    assert collapse(path.tolist()) == labels
    assert score == pytest.approx(float(lp[torch.arange(25), path].sum()), abs=1e-4)
    if labels:
        ref, ref_scores = torchaudio.functional.forced_align(lp[None], torch.tensor([labels]), blank=0)
        assert score == pytest.approx(float(ref_scores.sum()), abs=1e-4)  # the same best score
        assert path.tolist() == ref[0].tolist()


def test_segments_and_bad_input():
    assert segments([0, 1, 1, 0, 1, 2, 2, 0]) == [(1, 1, 3), (1, 4, 5), (2, 5, 7)]
    with pytest.raises(ValueError, match="cannot hold"):
        forced_align(torch.zeros(2, 3).log_softmax(-1), [1, 1])
