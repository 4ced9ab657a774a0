"""Speech recognition (chapter 11): CTC decoding, an n-gram language model, forced alignment,
word error rate, the recogniser around a trained acoustic model, and the pocketsphinx / espeak-ng
wrappers used as an independent baseline and an out-of-domain test set.

=================  =============================================================
``ctc``            collapse, greedy decoding, prefix beam search (+ LM fusion), brute force
``lm``             ``NGramLM``: interpolated absolute-discounting n-gram over digits
``align``          CTC forced alignment (Viterbi), word segments
``wer``            WER / CER / sentence accuracy (Levenshtein)
``features``       log-Mel front end, per-utterance normalisation, SpecAugment
``recognizer``     ``Recognizer``: wave -> digits, bad-input rules, chunked long audio
``training``       chapter 11's training recipe (``train_recognizer``), LM-weight tuning (``tune_fusion``)
``baseline``       pocketsphinx (default LM or a digit grammar), espeak-ng synthesis
=================  =============================================================
"""
