"""Batches for CTC training with :func:`mmcourse.train.fit`: features of similar length together
(little padding), SpecAugment drawn afresh every epoch, targets packed by ``pack_targets``."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler

from mmcourse.config import offset_seed
from mmcourse.models.asr import pack_targets
from mmcourse.speech.features import spec_augment


class CTCData(Dataset):
    """Items ``(features [T, 40], labels [L] as digits)``; ``augment=True`` applies SpecAugment
    (with torch's global RNG, which :func:`mmcourse.train.fit` seeds)."""

    def __init__(self, feats: list[torch.Tensor], labels: list[list[int]], augment: bool = False):
        if len(feats) != len(labels):
            raise ValueError(f"feats and labels differ in length: {len(feats)} vs {len(labels)}")
        self.feats, self.labels, self.augment = feats, labels, augment

    def __len__(self) -> int:
        return len(self.feats)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, list[int]]:
        x = self.feats[i]
        return (spec_augment(x) if self.augment else x), self.labels[i]


def collate(items: list[tuple[torch.Tensor, list[int]]]) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """-> ``((feats [B, T_max, 40], lengths [B]), targets [B, 2 + L_max])``."""
    feats = [x for x, _ in items]
    lengths = torch.tensor([x.shape[0] for x in feats])
    return (pad_sequence(feats, batch_first=True), lengths), pack_targets(lengths, [y for _, y in items])


class LengthBatches(Sampler):
    """Batches of indices with similar lengths, in a new random order every epoch (seeded once).

    ``sortagrad``: the first epoch goes from the shortest batch to the longest (DeepSpeech 2's
    curriculum: CTC leaves its all-blank start sooner on short utterances)."""

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 sortagrad: bool = False):
        self.lengths, self.batch_size, self.shuffle, self.sortagrad = lengths, batch_size, shuffle, sortagrad
        self.gen = torch.Generator().manual_seed(offset_seed(seed))
        self.epochs = 0

    def __iter__(self):
        n = len(self.lengths)
        jitter = torch.rand(n, generator=self.gen) * 30 if self.shuffle else torch.zeros(n)
        order = sorted(range(n), key=lambda i: self.lengths[i] + float(jitter[i]))
        batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.shuffle and not (self.sortagrad and self.epochs == 0):
            batches = [batches[i] for i in torch.randperm(len(batches), generator=self.gen).tolist()]
        self.epochs += 1
        return iter(batches)

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def ctc_loader(data: CTCData, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
               sortagrad: bool = False) -> DataLoader:
    lengths = [x.shape[0] for x in data.feats]
    sampler = LengthBatches(lengths, batch_size, shuffle, seed, sortagrad)
    return DataLoader(data, batch_sampler=sampler, collate_fn=collate)
