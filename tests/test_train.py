"""fit(): it learns on real data, keeps the best weights, survives Ctrl-C, checkpoints safely."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mmcourse.data import mnist_pool
from mmcourse.train import (
    History,
    evaluate,
    fit,
    load_checkpoint,
    loaders,
    predict,
    save_checkpoint,
)
from tests._helpers import shared_datasets


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


@pytest.fixture(scope="module")
def mnist_loaders():
    shared_datasets()
    return loaders(mnist_pool("train").subset(2000), mnist_pool("val"), batch_size=100)


def test_fit_lowers_the_loss_on_real_data(mnist_loaders):
    train, val = mnist_loaders
    model = _mlp()
    before = evaluate(model, val)
    hist = fit(model, train, val, epochs=3, progress=False)
    after = evaluate(model, val)
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert after["loss"] < before["loss"] - 1.0 and after["accuracy"] > 0.8
    assert len(hist) == 3 and hist.best_epoch in (1, 2, 3)


def test_fit_is_reproducible():
    shared_datasets()
    data = mnist_pool("train").subset(1000)
    a = fit(_mlp(), loaders(data, seed=3), epochs=1, progress=False, seed=3)
    b = fit(_mlp(), loaders(data, seed=3), epochs=1, progress=False, seed=3)
    assert a["train_loss"] == b["train_loss"]


def test_best_weights_restored_and_checkpointed(tmp_path, mnist_loaders):
    train, val = mnist_loaders
    model = _mlp()
    # A learning rate that wrecks the model after a good first epoch: best must be epoch 1.
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 if step < len(train) else 200.0)
    ckpt = tmp_path / "best.pt"
    hist = fit(model, train, val, epochs=3, optimizer=opt, scheduler=sched, checkpoint=ckpt, progress=False)
    assert hist.best_epoch == 1 and hist["val_acc"][0] > max(hist["val_acc"][1:])
    assert evaluate(model, val)["accuracy"] == pytest.approx(hist["val_acc"][0])
    fresh = _mlp()
    state = load_checkpoint(ckpt, fresh)
    assert state["epoch"] == 1
    torch.testing.assert_close(predict(fresh, val)[0], predict(model, val)[0])


class _Interrupting:
    """A loader that raises KeyboardInterrupt (as Ctrl-C does) during its ``after``-th pass."""

    def __init__(self, loader, after: int):
        self.loader, self.after, self.passes = loader, after, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.passes += 1
        for i, batch in enumerate(self.loader):
            if self.passes == self.after and i == 3:
                raise KeyboardInterrupt
            yield batch


def test_ctrl_c_keeps_best_weights_and_history(mnist_loaders):
    train, val = mnist_loaders
    model = _mlp()
    hist = fit(model, _Interrupting(train, after=3), val, epochs=10, progress=False)
    assert hist.interrupted and len(hist) == 2
    best = max(hist["val_acc"])
    assert evaluate(model, val)["accuracy"] == pytest.approx(best)


def test_checkpoint_round_trip_is_atomic_and_safe(tmp_path):
    model = _mlp()
    path = save_checkpoint({"model": model.state_dict(), "epoch": 7}, tmp_path / "sub" / "m.pt")
    assert path.is_file() and not list(tmp_path.rglob("*.tmp"))
    other = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    assert load_checkpoint(path, other)["epoch"] == 7
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
    # weights_only=True: a pickled arbitrary object is refused
    torch.save({"model": model.state_dict(), "evil": History()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


class _TwoModal(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(5, 4)

    def forward(self, x: dict) -> torch.Tensor:
        return self.a(x["a"]) + self.b(x["b"])  # [B, 4]


def test_fit_accepts_dict_inputs_and_regression():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 3, generator=g), torch.randn(64, 5, generator=g)
    y = (a.sum(1) > b.sum(1)).long() * 2

    class DictData(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            return {"a": a[i], "b": b[i]}, y[i]

    hist = fit(_TwoModal(), DataLoader(DictData(), batch_size=16), epochs=5, lr=0.05, progress=False)
    assert hist["train_acc"][-1] > 0.8 and hist.monitor == "train_acc"
    # regression: no accuracy, the loss is monitored
    x = torch.randn(64, 3, generator=g)
    reg = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    h = fit(nn.Linear(3, 1), reg, epochs=20, lr=0.05, loss_fn=nn.functional.mse_loss, progress=False)
    assert "train_acc" not in h.rows[0] and h["train_loss"][-1] < 0.01


@pytest.mark.parametrize("epochs", [0, -2, 1.5, True])
def test_fit_rejects_a_bad_epoch_count(epochs):
    data = DataLoader(TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,))), batch_size=4)
    with pytest.raises(ValueError, match="epochs must be a whole number >= 1"):
        fit(nn.Linear(3, 2), data, epochs=epochs, progress=False)


def test_corrupt_or_truncated_checkpoint_names_the_file(tmp_path):
    good = save_checkpoint({"model": nn.Linear(3, 2).state_dict()}, tmp_path / "good.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # an interrupted copy
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    for path in (cut, junk):
        with pytest.raises(ValueError, match=f"{path.name} is not a readable checkpoint.*delete it"):
            load_checkpoint(path, nn.Linear(3, 2))


def test_checkpoint_of_another_shape_lists_the_layers(tmp_path):
    path = save_checkpoint({"model": nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).state_dict()},
                           tmp_path / "m.pt")
    other = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2), nn.Linear(2, 2))
    with pytest.raises(ValueError) as err:
        load_checkpoint(path, other)
    msg = str(err.value)
    assert "m.pt do not fit Sequential" in msg
    assert "0.weight: expected (5, 3), got (4, 3)" in msg and "2.weight: expected (2, 5), got (2, 4)" in msg
    assert "missing keys: 3.weight, 3.bias" in msg
    extra = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(ValueError, match=r"unexpected keys: 2\.weight, 2\.bias"):
        load_checkpoint(path, extra)
