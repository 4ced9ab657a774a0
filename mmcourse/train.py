"""Training for any ``nn.Module``: :func:`fit`, :func:`evaluate`, :func:`predict`.

``fit`` is a plain PyTorch loop plus what every chapter needs: the device chosen
once, AMP on CUDA, seeding, a tqdm progress bar, a history that plots itself, the
best weights kept (in memory and, optionally, atomically on disk), and a clean stop
on Ctrl-C that keeps the best weights and the history so far.

A batch is ``(x, y)``; ``x`` may be a tensor or a dict of tensors (one per modality).
"""

from __future__ import annotations

import copy
import numbers
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from mmcourse.config import offset_seed, seed_everything
from mmcourse.device import autocast, get_device, to_device

Batch = tuple  # (x, y): x a tensor or dict of tensors, y [B] labels


@dataclass
class History:
    """One row per epoch: ``epoch, train_loss, train_acc, val_loss, val_acc, seconds``."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    interrupted: bool = False
    monitor: str = "val_acc"

    def __getitem__(self, key: str) -> list[float]:
        return [r[key] for r in self.rows if key in r]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def best(self) -> dict | None:
        return next((r for r in self.rows if r["epoch"] == self.best_epoch), None)

    @property
    def seconds(self) -> float:
        return sum(r["seconds"] for r in self.rows)

    def plot(self, ax=None, title: str | None = None):
        """Loss and accuracy curves, train vs val (one figure, two panels)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(9, 3.2))
        ep = self["epoch"]
        for k, style in (("train", "-"), ("val", "--")):
            if self[f"{k}_loss"]:
                ax[0].plot(ep[: len(self[f"{k}_loss"])], self[f"{k}_loss"], style, label=k)
            if self[f"{k}_acc"]:
                ax[1].plot(ep[: len(self[f"{k}_acc"])], self[f"{k}_acc"], style, label=k)
        ax[0].set(xlabel="epoch", ylabel="loss")
        ax[1].set(xlabel="epoch", ylabel="accuracy")
        if self.best_epoch is not None:
            ax[1].axvline(self.best_epoch, color="gray", lw=0.8, ls=":")
        for a in ax:
            a.legend()
        if title:
            ax[0].figure.suptitle(title)
        ax[0].figure.tight_layout()
        return ax

    def _repr_html_(self) -> str:  # a compact table in notebooks
        keys = [k for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds") if self[k]]
        head = "".join(f"<th>{k}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{r[k]:.4g}</td>" for k in keys if k in r) + "</tr>" for r in self.rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """``torch.save`` to a temporary file, then rename: an interrupted save never corrupts ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, model: nn.Module | None = None, map_location="cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``); load its ``model`` weights into ``model``.

    A corrupt or truncated file raises a ``ValueError`` naming it; weights that do not fit
    ``model`` raise a ``ValueError`` listing the layers that differ (name, expected shape, shape
    in the file) and the missing and unexpected keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, a pickle that is not plain weights
        if "Unsupported global" in str(err):  # a real pickle of other objects, refused
            raise ValueError(f"{path} holds Python objects besides tensors, which weights only loading "
                             "(weights_only=True, for safety) refuses: save plain state dicts with "
                             "save_checkpoint({'model': model.state_dict(), ...})") from err
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                         "it may be truncated or corrupt: delete it and save or train again") from err
    if model is not None:
        weights = state["model"] if isinstance(state, dict) and "model" in state else state
        problems = state_dict_mismatch(model, weights)
        if problems:
            raise ValueError(f"the weights in {path} do not fit {type(model).__name__}:\n  "
                             + "\n  ".join(problems)
                             + "\n(was it saved from a model built with other sizes?)")
        model.load_state_dict(weights)
    return state


def state_dict_mismatch(model: nn.Module, weights: dict) -> list[str]:
    """How ``weights`` (a state dict) differ from ``model``'s: one line per layer of another shape,
    then the missing and the unexpected keys (at most 10 of each). Empty when they fit."""
    if not isinstance(weights, dict):
        return [f"expected a state dict (name -> tensor), got {type(weights).__name__}"]
    own = model.state_dict()
    lines = [f"{k}: expected {tuple(v.shape)}, got {tuple(weights[k].shape)}" for k, v in own.items()
             if k in weights and hasattr(weights[k], "shape") and tuple(weights[k].shape) != tuple(v.shape)]
    for label, keys in (("missing", [k for k in own if k not in weights]),
                        ("unexpected", [k for k in weights if k not in own])):
        if keys:
            more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
            lines.append(f"{label} keys: {', '.join(keys[:10])}{more}")
    return lines


def _batch_size(y: torch.Tensor) -> int:
    return y.shape[0]


def _run_epoch(model, loader, loss_fn, device, amp, optimizer=None, scaler=None, grad_clip=None,
               scheduler=None, bar=None) -> tuple[float, float | None]:
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns (mean loss, accuracy)."""
    training = optimizer is not None
    model.train(training)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n, classify = 0, True
    with torch.set_grad_enabled(training):
        for x, y in loader:
            x, y = to_device(x, device), to_device(y, device)
            with autocast(device, amp):
                out = model(x)
                loss = loss_fn(out, y)
            if training:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
            b = _batch_size(y)
            total_loss += loss.detach().float() * b
            classify = classify and out.ndim == 2 and y.ndim == 1 and not y.is_floating_point()
            if classify:
                correct += (out.detach().argmax(-1) == y).sum()
            n += b
            if bar is not None:
                bar.update(1)
    if n == 0:
        raise ValueError("the data loader yielded no batches")
    return float(total_loss) / n, (float(correct) / n if classify else None)


def fit(
    model: nn.Module,
    train_loader: Iterable[Batch],
    val_loader: Iterable[Batch] | None = None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    loss_fn: Callable = nn.functional.cross_entropy,
    device: torch.device | None = None,
    amp: bool = True,
    seed: int | None = 0,
    grad_clip: float | None = None,
    checkpoint: str | Path | None = None,
    monitor: str = "val_acc",
    restore_best: bool = True,
    patience: int | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` and return its :class:`History`.

    Args:
        epochs: passes over ``train_loader``.
        optimizer: defaults to Adam(lr). ``scheduler`` is stepped after every batch.
        loss_fn: ``loss_fn(model(x), y)``, cross-entropy by default.
        seed: seeds Python/NumPy/torch with ``seed + MMCOURSE_SEED`` before training (None: leave the
            RNGs alone).
        checkpoint: if given, the best weights are also saved there (atomically).
        monitor: ``"val_acc"`` (higher is better) or ``"val_loss"`` (lower is better); without a
            ``val_loader`` the train metrics are monitored instead.
        restore_best: load the best weights into ``model`` at the end.
        patience: stop early after this many epochs without improvement.

    Ctrl-C (KeyboardInterrupt) ends training cleanly: the best weights are restored and the
    history so far is returned with ``history.interrupted = True``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1 (passes over train_loader), got {epochs!r}")
    if seed is not None:
        seed_everything(seed)
    device = device or get_device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    if val_loader is None:
        monitor = monitor.replace("val_", "train_")
    lower_better = monitor.endswith("loss")
    history = History(monitor=monitor)
    best_value, best_state, stale = None, None, 0
    steps = len(train_loader) if hasattr(train_loader, "__len__") else None
    bar = tqdm(total=epochs * steps if steps else None, disable=not progress, mininterval=0.5,
               desc="fit", leave=False)
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            row = {"epoch": epoch}
            row["train_loss"], acc = _run_epoch(model, train_loader, loss_fn, device, amp, optimizer,
                                                scaler, grad_clip, scheduler, bar)
            if acc is not None:
                row["train_acc"] = acc
            if val_loader is not None:
                row["val_loss"], acc = _run_epoch(model, val_loader, loss_fn, device, amp)
                if acc is not None:
                    row["val_acc"] = acc
            row["seconds"] = time.perf_counter() - t0
            history.rows.append(row)
            value = row.get(monitor, row.get(monitor.replace("_acc", "_loss")))
            if monitor not in row:
                lower_better = True
            improved = best_value is None or (value < best_value if lower_better else value > best_value)
            if improved:
                best_value, history.best_epoch, stale = value, epoch, 0
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                if checkpoint is not None:
                    save_checkpoint({"model": best_state, "epoch": epoch, "history": history.rows}, checkpoint)
            else:
                stale += 1
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k not in ("epoch", "seconds")})
            if patience is not None and stale >= patience:
                break
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable[Batch], device: torch.device | None = None,
            amp: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs and targets over a loader: ``(outputs [N, ...], targets [N])`` on the CPU."""
    device = device or get_device()
    model.to(device).eval()
    outs, ys = [], []
    for x, y in loader:
        with autocast(device, amp):
            outs.append(model(to_device(x, device)).float().cpu())
        ys.append(y)
    return torch.cat(outs), torch.cat(ys)


def evaluate(model: nn.Module, loader: Iterable[Batch], loss_fn: Callable = nn.functional.cross_entropy,
             device: torch.device | None = None) -> dict[str, float]:
    """``{"loss", "accuracy"}`` of ``model`` over ``loader`` (accuracy for classifiers only)."""
    out, y = predict(model, loader, device)
    result = {"loss": float(loss_fn(out, y))}
    if out.ndim == 2 and y.ndim == 1:
        result["accuracy"] = float((out.argmax(-1) == y).float().mean())
    return result


def loaders(train, val=None, test=None, batch_size: int = 128, seed: int = 0):
    """DataLoaders for the splits given (train shuffled by a generator seeded with ``seed + MMCOURSE_SEED``)."""
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(offset_seed(seed))
    out = [DataLoader(train, batch_size=batch_size, shuffle=True, generator=g)]
    out += [DataLoader(d, batch_size=batch_size * 2) for d in (val, test) if d is not None]
    return out if len(out) > 1 else out[0]
