"""Train chapter 14's GPT with DistributedDataParallel: the same script on 1 CPU, 2 CPU processes or N GPUs.

    python -m mmcourse.distributed --steps 50 --out runs/one.json                      # one process
    torchrun --standalone --nproc_per_node=2 -m mmcourse.distributed --steps 50 --out runs/two.json
    torchrun --standalone --nproc_per_node=8 -m mmcourse.distributed --steps 2000 --amp  # 8 GPUs, bf16

``torchrun`` starts one process per device and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``; the
script then joins a process group (``nccl`` on CUDA, ``gloo`` on CPU, chosen automatically), wraps
the model in ``DistributedDataParallel`` and gives each rank ``--batch / WORLD_SIZE`` sequences of
every global batch through a ``DistributedSampler``. After ``backward`` DDP all-reduces (averages)
the gradients, so every rank takes the same step a single process would take on the whole batch:
the loss curves agree to float rounding (``tests/test_distributed.py`` checks 2 processes vs 1).
Only rank 0 writes the checkpoint and the JSON log (``--out``: the global loss of every step,
tokens per second, world size, backend).

The data: easy-VQA's questions and answers as one token stream, cut into sequences of
``--block`` tokens (every sequence has the same number of targets, so the mean of the ranks' mean
losses is the mean loss of the whole batch).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from mmcourse.models.gpt import GPT, GPTConfig, lm_loss
from mmcourse.text import Vocab, tokenize


def token_stream(split: str = "train") -> tuple[torch.Tensor, Vocab]:
    """easy-VQA's ``question answer <eos>`` texts as one stream of word ids ``[N]``, and its vocabulary."""
    from mmcourse.data.vqa import _split, answers

    (questions, ans, _), _ = _split(split)
    texts = [[*tokenize(q), *tokenize(a), "<eos>"] for q, a in zip(questions, ans, strict=True)]
    vocab = Vocab(sorted({w for t in texts for w in t if w != "<eos>"} | set(answers())), eos="<eos>")
    return torch.tensor([vocab.stoi[w] for t in texts for w in t]), vocab  # one lookup per word: fast


def chunks(stream: torch.Tensor, block: int) -> TensorDataset:
    """Non-overlapping ``(x [block], y [block])`` pairs, ``y`` = ``x`` shifted by one token."""
    if block < 1 or len(stream) <= block:
        raise ValueError(f"--block must be in 1..{len(stream) - 1} tokens, got {block}")
    n = (len(stream) - 1) // block
    x = stream[: n * block].view(n, block)
    y = stream[1 : n * block + 1].view(n, block)
    return TensorDataset(x, y)


def setup(force_cpu: bool = False) -> tuple[int, int, torch.device, str]:
    """Join the process group when started by torchrun: ``(rank, world_size, device, backend)``.

    CUDA (one GPU per process, ``nccl``) when there is one, unless ``force_cpu`` or ``MMCOURSE_DEVICE=cpu``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and not force_cpu and os.environ.get("MMCOURSE_DEVICE", "") != "cpu"
    backend = "nccl" if cuda else "gloo"
    if "RANK" not in os.environ:  # a plain `python -m mmcourse.distributed`: one process, no group
        return 0, 1, torch.device("cuda" if cuda else "cpu"), "none"
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    return rank, world, device, backend


def train(args: argparse.Namespace) -> dict:
    rank, world, device, backend = setup(args.cpu)
    if args.batch % world:
        raise ValueError(f"--batch {args.batch} must be divisible by the number of processes {world}")
    stream, vocab = token_stream()
    data = chunks(stream, args.block)
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    cfg = GPTConfig(len(vocab), block_size=args.block, n_layer=args.layers, n_head=args.heads,
                    n_embd=args.embd, dropout=0.0)  # no dropout: ranks would draw different masks
    model = GPT(cfg).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else model
    # each rank reads every world-th sequence of the shuffled order: together, the same global batch
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=args.seed, drop_last=True)
    loader = DataLoader(data, batch_size=args.batch // world, sampler=sampler, drop_last=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    amp = args.amp and device.type == "cuda"
    losses, step, epoch, tokens, t0 = [], 0, 0, 0, time.perf_counter()
    while step < args.steps:
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = lm_loss(ddp(x), y)  # this rank's mean over its B/world sequences
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP: gradients all-reduced (averaged over ranks) here
            opt.step()
            g = loss.detach().float()
            if world > 1:
                dist.all_reduce(g)  # sum over ranks ...
                g /= world  # ... / world = the global batch's mean loss
            losses.append(float(g))
            tokens += x.numel() * world
            step += 1
            if step >= args.steps:
                break
        epoch += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out = {"world_size": world, "backend": backend, "device": str(device), "amp_bf16": amp,
           "steps": step, "global_batch": args.batch, "losses": losses, "seconds": seconds,
           "tokens_per_s": tokens / seconds}
    if rank == 0:  # only rank 0 writes: every rank holds the same weights
        if args.checkpoint:
            from mmcourse.train import save_checkpoint

            save_checkpoint({"model": model.state_dict(), "config": vars(cfg), "step": step}, args.checkpoint)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(out))
        print(f"world {world} ({backend}, {device}): {step} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
              f"{out['tokens_per_s']:,.0f} tokens/s")
    if world > 1:
        dist.barrier()  # nobody leaves before rank 0 has saved
        dist.destroy_process_group()
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mmcourse.distributed", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=50, help="optimizer steps (default 50)")
    p.add_argument("--batch", type=int, default=32, help="GLOBAL batch in sequences, split over processes")
    p.add_argument("--block", type=int, default=32, help="tokens per sequence")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--embd", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu", action="store_true", help="stay on the CPU (gloo) even where CUDA is available")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (ignored on the CPU)")
    p.add_argument("--out", default="", help="JSON log written by rank 0")
    p.add_argument("--checkpoint", default="", help="checkpoint written by rank 0")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    for name in ("steps", "batch", "layers", "heads", "embd"):
        if getattr(args, name) < 1:
            parser().error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return train(args)


if __name__ == "__main__":
    main()
