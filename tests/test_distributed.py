"""DDP on the CPU (gloo): 2 processes with half the batch each == 1 process with the whole batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler, TensorDataset

from mmcourse.distributed import chunks, main

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--steps", "50", "--batch", "16", "--block", "16", "--layers", "2", "--heads", "2", "--embd", "32"]


def _run(cmd: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MMCOURSE_THREADS": "1", "MMCOURSE_DEVICE": "cpu"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"


def test_two_processes_give_the_same_losses_as_one(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    _run([sys.executable, "-m", "mmcourse.distributed", *ARGS, "--out", str(one)], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
          "-m", "mmcourse.distributed", *ARGS, "--out", str(two), "--checkpoint", str(tmp_path / "ck.pt")],
         tmp_path)
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["world_size"], b["world_size"], b["backend"]) == (1, 2, "gloo")
    assert len(a["losses"]) == len(b["losses"]) == 50
    diff = max(abs(x - y) for x, y in zip(a["losses"], b["losses"], strict=True))
    assert diff <= 1e-4, diff
    assert a["losses"][-1] < a["losses"][0] - 0.5  # and it does learn
    state = torch.load(tmp_path / "ck.pt", weights_only=True)  # rank 0 saved it
    assert state["step"] == 50 and "wte.weight" in state["model"]


def test_the_ranks_together_read_the_single_process_batch():
    data = TensorDataset(torch.arange(64))
    batch, world = 8, 2
    single = list(DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=3))
    ranks = [list(DistributedSampler(data, num_replicas=world, rank=r, shuffle=True, seed=3)) for r in range(world)]
    for b in range(64 // batch):
        got = sorted(i for r in ranks for i in r[b * batch // world : (b + 1) * batch // world])
        assert got == sorted(single[b * batch : (b + 1) * batch])


def test_chunks_shift_by_one_and_bad_arguments():
    x, y = chunks(torch.arange(10), 3).tensors
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="--block"):
        chunks(torch.arange(10), 10)
    with pytest.raises(SystemExit):
        main(["--steps", "0"])
