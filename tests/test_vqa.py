"""VQA models: attention weights, question encoders, unknown words, batches grouped by image, bad input."""

from __future__ import annotations

import pytest
import torch

from mmcourse.models.vqa import (
    FUSIONS,
    BagOfWords,
    GRUEncoder,
    QuestionBatches,
    StackedAttention,
    VQANet,
    encode_questions,
)
from mmcourse.text import Vocab, tokenize

QUESTIONS = ["is there a red shape?", "what color is the shape?", "does the image not contain a circle?"]


def _vocab() -> Vocab:
    return Vocab.build([tokenize(q) for q in QUESTIONS], pad="<pad>", unk="<unk>")


def test_attention_weights_sum_to_one_and_mix_regions():
    torch.manual_seed(0)
    att = StackedAttention(dim=8, hops=2)
    v, q = torch.randn(3, 64, 8), torch.randn(3, 8)
    u, p = att(v, q)
    assert p.shape == (3, 2, 64) and (p >= 0).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(3, 2))
    # one hop by hand: u = q + sum_r p_r v_r
    one = StackedAttention(dim=8, hops=1)
    u1, p1 = one(v, q)
    torch.testing.assert_close(u1, q + (p1[:, 0, :, None] * v).sum(1))


def test_unknown_words_map_to_unk_and_are_reported():
    vocab = _vocab()
    ids, lengths, unknown = encode_questions(vocab, ["is there a purple shape?", "is there a red blob?"])
    assert unknown == ["purple", "blob"]
    assert ids[0, 3] == vocab.unk_id and ids[1, 4] == vocab.unk_id
    assert lengths.tolist() == [6, 6] and ids[0, 0] == vocab.stoi["is"]
    _, _, none = encode_questions(vocab, QUESTIONS)
    assert none == []
    with pytest.raises(ValueError, match="pad and unk"):
        encode_questions(Vocab.build([tokenize(q) for q in QUESTIONS], pad="<pad>"), QUESTIONS)
    with pytest.raises(ValueError, match="list of strings"):
        encode_questions(vocab, "is there a red shape?")


def test_question_encoders_padding_and_order():
    vocab = _vocab()
    ids, lengths, _ = encode_questions(vocab, QUESTIONS)  # padded to the longest
    torch.manual_seed(0)
    gru, bow = GRUEncoder(len(vocab), 8, vocab.pad_id), BagOfWords(len(vocab), 8, vocab.pad_id)
    for enc in (gru, bow):  # more padding changes nothing
        longer = torch.cat([ids, torch.full((3, 4), vocab.pad_id)], 1)
        torch.testing.assert_close(enc(ids, lengths), enc(longer, lengths))
    rev = ids.clone()
    rev[0, :6] = ids[0, :6].flip(0)
    torch.testing.assert_close(bow(rev, lengths)[0], bow(ids, lengths)[0])  # a bag ignores order
    assert not torch.allclose(gru(rev, lengths)[0], gru(ids, lengths)[0])  # a GRU does not


def test_batches_group_questions_by_image():
    images = torch.rand(5, 3, 64, 64)
    image_index = torch.tensor([3, 0, 3, 1, 4, 4, 4, 0, 2, 3])
    q = torch.arange(10)[:, None]
    batches = QuestionBatches(images, image_index, q, torch.arange(10), images_per_batch=2, shuffle=True, seed=1)
    assert len(batches) == 3
    seen = []
    for x, y in batches:
        assert len(x["images"]) <= 2
        for k, row in zip(x["index"].tolist(), x["question"][:, 0].tolist(), strict=True):
            assert torch.equal(x["images"][k], images[image_index[row]])  # each question sees its own image
        seen += y.tolist()
    assert sorted(seen) == list(range(10))  # every question exactly once


@pytest.mark.parametrize("fusion", FUSIONS)
def test_vqanet_forward(fusion):
    vocab = _vocab()
    ids, lengths, _ = encode_questions(vocab, QUESTIONS)
    torch.manual_seed(0)
    m = VQANet(len(vocab), 13, fusion=fusion, hops=2).eval()
    images = torch.rand(2, 3, 64, 64)
    x = {"images": images, "index": torch.tensor([1, 0, 1]), "question": ids, "lengths": lengths}
    out, att = m(x, return_attention=True)
    assert out.shape == (3, 13)
    assert (att is not None) == (fusion == "attention")
    if att is not None:
        assert att.shape == (3, 2, 64)
        torch.testing.assert_close(att.sum(-1), torch.ones(3, 2))
    if fusion != "question only":  # the same as one image per question
        per = {"image": images[x["index"]], "question": ids, "lengths": lengths}
        torch.testing.assert_close(m(per), out)


def test_wrong_image_size_gets_a_clear_error():
    vocab = _vocab()
    ids, lengths, _ = encode_questions(vocab, QUESTIONS)
    m = VQANet(len(vocab), 13)
    with pytest.raises(ValueError, match=r"must be \[B, 3, 64, 64\].*interpolate"):
        m({"image": torch.rand(3, 3, 32, 32), "question": ids, "lengths": lengths})
    with pytest.raises(ValueError, match="fusion must be one of"):
        VQANet(10, 13, fusion="sum")


def test_easy_vqa_question_types_and_negation():
    from mmcourse.data.vqa import answers
    from mmcourse.data.vqa_tasks import QUESTION_TYPES, answer_types, is_negated

    types = answer_types()
    assert [int((types == k).sum()) for k in range(3)] == [2, 8, 3]  # yes/no, colours, shapes
    assert QUESTION_TYPES[int(types[answers().index("teal")])] == "colour"
    assert is_negated("does the image not contain a circle?") and is_negated("is no red shape present?")
    assert not is_negated("is there a red shape?") and not is_negated("what is the noted shape?")
