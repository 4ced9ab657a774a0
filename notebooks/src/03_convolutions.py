# %% [markdown]
# # 03 · Convolutional networks
#
# **Book:** Ch. 4: convolution, pooling, feature maps, detection and segmentation
#
# **You will be able to:**
# - write a 2-D convolution as "cut out patches, then one matrix product" (`unfold`), and check it against `nn.Conv2d`;
# - predict any layer's output shape from kernel, padding, stride and dilation;
# - train a LeNet-style CNN and a small residual CNN on real digits, clothes and spoken digits (as log-Mel images);
# - look inside a trained CNN: its learned filters and its feature maps, layer by layer;
# - segment an image pixel by pixel with a tiny U-Net and score it with IoU.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import ipywidgets as W
from torch import nn
from torchvision.ops import box_iou
from torchvision.transforms import v2

from mmcourse.audio import FeatureConfig, cached_features
from mmcourse.config import is_fast, pick, seed_everything
from mmcourse.data import FASHION_CLASSES, FSDD, TensorData, fashion_mnist, mnist_pool, photo
from mmcourse.data.demos import PHOTOS
from mmcourse.data.shapes import SHAPE_CLASSES, shapes
from mmcourse.device import describe, get_device
from mmcourse.models import count_parameters
from mmcourse.models.cnn import LeNet, ResidualCNN, SpectrogramCNN
from mmcourse.models.conv import (KERNELS, conv2d, filter_image, out_shape, out_size, pool2d,
                                  receptive_field, sobel_magnitude)
from mmcourse.models.segmentation import TinyUNet, iou_per_class, mean_iou
from mmcourse.results import Results
from mmcourse.train import evaluate, fit, loaders, predict
from mmcourse.viz import Panel
from mmcourse.viz.features import feature_map_panel, plot_filtered, plot_filters, plot_segmentation

plt.rcParams["figure.dpi"] = 80
device = get_device()
rec = Results("03_convolutions")
seed_everything(0)
print("device:", describe(), "| mode:", "fast" if is_fast() else "full")

# Sizes and epochs: fast mode (CI) trains on subsets for fewer epochs.
MNIST_TRAIN, MNIST_EPOCHS = pick(fast=(3000, 3), full=(None, 12))  # None: all 8,000 pool training images
FASHION_TRAIN, FASHION_EPOCHS = pick(fast=(6000, 2), full=(None, 6))  # None: all 58,000 (2,000 for val)
FASHION_BATCH = pick(fast=64, full=256)
FSDD_TRAIN, FSDD_EPOCHS = pick(fast=(1000, 5), full=(None, 20))  # None: all 2,400 (300 for val)
SEG_TRAIN, SEG_EPOCHS = pick(fast=(600, 4), full=(12000, 12))

# %% [markdown]
# ## 1. Convolution, written out
#
# A convolution layer slides a small kernel over the image. At every position it multiplies
# the kernel with the patch under it and sums: one output number per position and kernel.
# With input `x [C, H, W]`, weights `w [O, C, k, k]` and stride 1, no padding:
#
# $$\text{out}[o, i, j] = b[o] + \sum_{c}\sum_{u=0}^{k-1}\sum_{v=0}^{k-1} w[o, c, u, v]\; x[c, i+u, j+v]$$
#
# (Deep-learning libraries compute this *cross-correlation* and call it convolution; flipping
# the kernel would give the textbook convolution, and a learned kernel does not care.) Three
# properties make it the right layer for images: **locality** (each output looks at a k x k
# neighbourhood), **weight sharing** (the same kernel everywhere, so a 3x3 layer has 9 C O
# weights whatever the image size) and **translation equivariance** (shift the input, the
# output shifts with it). Written with loops, it is exactly the formula:

# %%
def conv2d_loops(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [C, H, W], w [O, C, k, k], b [O] -> [O, H-k+1, W-k+1] (stride 1, no padding)."""
    o_count, _, k, _ = w.shape
    h_out, w_out = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = torch.empty(o_count, h_out, w_out)
    for o in range(o_count):
        for i in range(h_out):
            for j in range(w_out):
                out[o, i, j] = (w[o] * x[:, i : i + k, j : j + k]).sum() + b[o]
    return out


torch.manual_seed(0)
layer = nn.Conv2d(3, 4, 3)
x_demo = torch.randn(1, 3, 8, 8)
loops_ok = torch.allclose(conv2d_loops(x_demo[0], layer.weight, layer.bias), layer(x_demo)[0], atol=1e-5)
print("loops == nn.Conv2d:", loops_ok)  # NBVAL_CHECK_OUTPUT

# %% [markdown]
# Loops are slow. The trick every library uses is **im2col**: cut every patch the kernel will
# visit into a column (`F.unfold`), and the whole layer becomes *one* matrix product of the
# weights `[O, C·k·k]` with the columns `[C·k·k, L]`, where L is the number of positions.
# Here is what `unfold` does to a 4x4 image with a 3x3 kernel: four positions, four patches of 9.

# %%
img4 = torch.arange(16.0).view(1, 1, 4, 4)
print(img4[0, 0].long())
print("patches (one per row):")
print(F.unfold(img4, 3)[0].T.long())  # NBVAL_CHECK_OUTPUT

# %% [markdown]
# `mmcourse.models.conv.conv2d` is that idea in 10 lines, with stride, padding, dilation and
# groups. It agrees with `nn.Conv2d` to floating-point precision in every configuration:

# %%
configs = [
    dict(kernel_size=3),
    dict(kernel_size=5, stride=2, padding=2),
    dict(kernel_size=3, padding=2, dilation=2),
    dict(kernel_size=3, stride=2, padding=1, groups=4),
    dict(kernel_size=(3, 1), stride=(1, 2)),
]
x_demo = torch.randn(2, 8, 15, 15)
conv_ok = []
for cfg in configs:
    layer = nn.Conv2d(8, 16, **cfg)
    ours = conv2d(x_demo, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)
    conv_ok.append(torch.allclose(ours, layer(x_demo), atol=1e-5))
    print(f"{str(cfg):60s} -> {tuple(ours.shape)}  equal: {conv_ok[-1]}")  # NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 2. Classic kernels on a real photo
#
# Before CNNs, image processing *designed* kernels: a box or Gaussian kernel averages
# (blurs), Sobel kernels take a derivative in x or y (edges), the Laplacian a second
# derivative, "sharpen" adds the Laplacian back to the image. A depthwise convolution
# (`groups = channels`) applies one to every channel. Pick a photo and a kernel:

# %%
def draw_kernel(fig, photo_name: str, kernel: str):
    im = photo(photo_name)
    gray = im.mean(0, keepdim=True)  # [1, H, W]
    out = filter_image(im if kernel.endswith("blur") else gray, KERNELS[kernel])
    plot_filtered(fig, {"input": im, kernel: out.clamp(0, 1) if kernel.endswith("blur") else out,
                        "kernel": KERNELS[kernel].unsqueeze(0)}, ncols=3)
    return f"{kernel}: {tuple(KERNELS[kernel].shape)} kernel; output {tuple(out.shape)}"


kernel_panel = Panel(draw_kernel, figsize=(10, 3.2),
                     photo_name=W.Dropdown(options=PHOTOS, value="chelsea", description="photo"),
                     kernel=W.Dropdown(options=list(KERNELS), value="sobel x", description="kernel"))
kernel_panel

# %%
cat = photo("chelsea").mean(0, keepdim=True)  # [1, 300, 451] grayscale
edges = sobel_magnitude(cat)


def total_variation(t: torch.Tensor) -> float:
    """Mean absolute difference between neighbouring pixels: how much fine detail there is."""
    return float((t[..., 1:, :] - t[..., :-1, :]).abs().mean() + (t[..., :, 1:] - t[..., :, :-1]).abs().mean())


blurred, sharpened = filter_image(cat, KERNELS["gaussian blur"]), filter_image(cat, KERNELS["sharpen"])
tv = {"input": total_variation(cat), "gaussian blur": total_variation(blurred), "sharpen": total_variation(sharpened)}
print({k: round(v, 4) for k, v in tv.items()})
fig = plt.figure(figsize=(10, 2.6))
plot_filtered(fig, {"input": cat, "gaussian blur": blurred, "sharpen": sharpened.clamp(0, 1),
                    "edge magnitude": edges}, ncols=4)
plt.show()

# %% [markdown]
# Blurring removes fine detail (the total variation drops), sharpening amplifies it, and the
# edge magnitude $\sqrt{g_x^2 + g_y^2}$ outlines the cat. A CNN's first layer will *learn*
# kernels much like these, because they are what distinguishes images.
#
# ## 3. Padding, stride, dilation: the output-shape formula
#
# Along each axis, with input size $n$, kernel $k$, padding $p$, stride $s$ and dilation $d$
# (a dilated kernel has gaps: it spans $d(k-1)+1$ pixels):
#
# $$n_\text{out} = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1$$
#
# - "valid" (no padding) shrinks by $k-1$; padding $p = (k-1)/2$ keeps the size ("same");
# - stride 2 halves the size (and the compute of every later layer);
# - dilation widens the view without more weights.
#
# The formula against what PyTorch actually returns:

# %%
rows = [(28, 5, 1, 0, 1), (28, 5, 1, 2, 1), (28, 3, 2, 1, 1), (28, 2, 2, 0, 1),
        (32, 3, 1, 0, 2), (32, 3, 1, 2, 2), (101, 4, 3, 1, 1), (7, 7, 1, 0, 1)]
print(f"{'n':>4} {'k':>2} {'s':>2} {'p':>2} {'d':>2} | formula  torch")
for n, k, s, p, d in rows:
    torch_n = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d).shape[-1]
    print(f"{n:4d} {k:2d} {s:2d} {p:2d} {d:2d} | {out_size(n, k, s, p, d):7d} {torch_n:6d}")  # NBVAL_CHECK_OUTPUT
    assert out_size(n, k, s, p, d) == torch_n

# %% [markdown]
# Stacking layers grows the **receptive field**, the input region one output pixel sees:
# $r = 1 + \sum_l (k_l - 1)\,d_l \prod_{i<l} s_i$. Three 3x3 convolutions see 7x7 (as much as
# one 7x7 kernel, with fewer weights and more non-linearities); LeNet's conv-pool-conv-pool
# sees 16x16 of a 28x28 digit. We check the formula by back-propagating from one output
# pixel: the input gradient is non-zero exactly on its receptive field. (The probe has LeNet's
# geometry with all-ones kernels and *average* pooling: max pooling would pass the gradient to
# one pixel per window only.)

# %%
lenet_layers = [(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1)]  # (kernel, stride, dilation)
probe = nn.Sequential(nn.Conv2d(1, 1, 5, padding=2), nn.AvgPool2d(2), nn.Conv2d(1, 1, 5, padding=2), nn.AvgPool2d(2))
for m in probe:
    if isinstance(m, nn.Conv2d):
        nn.init.ones_(m.weight)
x_rf = torch.randn(1, 1, 28, 28, requires_grad=True)
probe(x_rf)[0, 0, 3, 3].backward()  # one pixel of the last map [1, 1, 7, 7]
rf_rows = int((x_rf.grad[0, 0].abs().sum(1) > 0).sum())  # input rows that influence it
print("receptive fields: 3x conv3:", receptive_field([(3, 1, 1)] * 3),  # NBVAL_CHECK_OUTPUT
      "| LeNet formula:", receptive_field(lenet_layers), "| LeNet by gradient:", rf_rows)

# %% [markdown]
# ## 4. Pooling
#
# Pooling summarises each window by its maximum (or mean). It has no weights; it shrinks the
# map (less compute later, a wider receptive field) and makes the output less sensitive to
# small shifts: a peak that moves by one pixel inside a window gives the same maximum. Max
# pooling written with `unfold`, checked against PyTorch:

# %%
fm = torch.randn(2, 3, 12, 12)
pool_ok = (torch.equal(pool2d(fm, 2), F.max_pool2d(fm, 2)),
           torch.allclose(pool2d(fm, 3, 1, 1, "avg"), F.avg_pool2d(fm, 3, 1, 1), atol=1e-6))
print("max == F.max_pool2d:", pool_ok[0], "| avg == F.avg_pool2d:", pool_ok[1])  # NBVAL_CHECK_OUTPUT


def shift_change(t: torch.Tensor, pool: int) -> float:
    """Relative change of the (max-pooled) map when the image moves one pixel right."""
    a = t if pool == 1 else F.max_pool2d(t, pool)
    b = torch.roll(t, 1, dims=-1)
    b = b if pool == 1 else F.max_pool2d(b, pool)
    return float((a - b).norm() / a.norm())


shift = {p: shift_change(edges[None], p) for p in (1, 2, 4, 8)}
print("relative change of the cat's edge map after a 1-pixel shift, by pooling size:",
      {p: round(v, 3) for p, v in shift.items()})

# %% [markdown]
# The larger the pooling window, the less a one-pixel shift changes the output: pooling
# trades *where exactly* for *whether*, which is what a classifier wants.
#
# ## 5. CNNs on real images: the MNIST pool
#
# Two architectures, both with BatchNorm (which lets Adam train them fast):
# - **LeNet-style** (LeCun 1998): conv 5x5, pool, conv 5x5, pool, then an MLP.
# - **Residual CNN** (He 2016): each block learns a correction $F(x)$ added to its input,
#   $y = \text{ReLU}(F(x) + x)$; the identity path lets gradients through deep stacks.
#   It ends with global average pooling instead of a big dense layer.
#
# The MNIST pool has only 8,000 training images, so we **augment**: every epoch sees each
# digit slightly rotated, shifted and scaled (`torchvision.transforms.v2` on tensors), which
# teaches the invariances we want and fights over-fitting.

# %%
augment = v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))
mnist_train = mnist_pool("train", transform=augment).subset(MNIST_TRAIN)
mnist_val, mnist_test = mnist_pool("val"), mnist_pool("test")
print(mnist_pool("train"), mnist_val, mnist_test, sep="\n")  # NBVAL_CHECK_OUTPUT

fig, ax = plt.subplots(2, 8, figsize=(8, 2.2))
for j in range(8):
    ax[0, j].imshow(mnist_pool("train").x[j, 0], cmap="gray")
    ax[1, j].imshow(mnist_train.transform(mnist_pool("train").x[j])[0], cmap="gray")
    ax[0, j].axis("off")
    ax[1, j].axis("off")
ax[0, 0].set_title("original", fontsize=9, loc="left")
ax[1, 0].set_title("augmented", fontsize=9, loc="left")
plt.show()


# %%
def train(model: nn.Module, train_set, val_set, epochs: int, lr: float = 3e-3, batch_size: int = 128):
    """AdamW with a one-cycle learning-rate schedule (warm up, then anneal); best val weights kept."""
    train_loader, val_loader = loaders(train_set, val_set, batch_size=batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * len(train_loader))
    return fit(model, train_loader, val_loader, epochs=epochs, optimizer=opt, scheduler=sched)


mnist_models = {"LeNet": LeNet(), "ResidualCNN": ResidualCNN()}
mnist_hist, mnist_acc = {}, {}
for name, model in mnist_models.items():
    mnist_hist[name] = train(model, mnist_train, mnist_val, MNIST_EPOCHS, batch_size=pick(fast=64, full=128))
    val_acc = mnist_hist[name].best["val_acc"]
    mnist_acc[name] = evaluate(model, loaders(mnist_test, batch_size=256))["accuracy"]
    print(f"{name:12s} {count_parameters(model):7,d} parameters | val {val_acc:.4f} | test {mnist_acc[name]:.4f} "
          f"| {mnist_hist[name].seconds:.0f} s")

# %% [markdown]
# We pick the model by its **validation** accuracy (never by the test set), and report that
# model's test accuracy:

# %%
best_mnist = max(mnist_models, key=lambda n: mnist_hist[n].best["val_acc"])
print("chosen on validation:", best_mnist, "| its test accuracy:", round(mnist_acc[best_mnist], 4))
fig, ax = plt.subplots(1, 2, figsize=(9, 3))
for name, h in mnist_hist.items():
    ax[0].plot(h["epoch"], h["train_loss"], label=f"{name} train")
    ax[1].plot(h["epoch"], h["val_acc"], label=f"{name} val")
ax[0].set(xlabel="epoch", ylabel="loss")
ax[1].set(xlabel="epoch", ylabel="val accuracy")
ax[0].legend()
ax[1].legend()
plt.show()

# %% [markdown]
# ## 6. Fashion-MNIST
#
# Clothes are harder than digits: a shirt, a pullover and a coat share a silhouette and differ
# in texture and detail. Fashion-MNIST has 60,000 training images, so no augmentation is needed
# here; we hold 2,000 of them out for validation and train the residual CNN on the rest.

# %%
fashion_all, fashion_test = fashion_mnist("train"), fashion_mnist("test")
perm = torch.randperm(len(fashion_all), generator=torch.Generator().manual_seed(0))
fashion_val = TensorData(fashion_all.x[perm[:2000]], fashion_all.y[perm[:2000]], FASHION_CLASSES)
fashion_train = TensorData(fashion_all.x[perm[2000:]], fashion_all.y[perm[2000:]], FASHION_CLASSES)
fashion_train = fashion_train.subset(FASHION_TRAIN)
print(fashion_mnist("train"), fashion_val, fashion_test, sep="\n")  # NBVAL_CHECK_OUTPUT

# %%
fashion_model = ResidualCNN()
fashion_hist = train(fashion_model, fashion_train, fashion_val, FASHION_EPOCHS, lr=4e-3, batch_size=FASHION_BATCH)
out, y = predict(fashion_model, loaders(fashion_test, batch_size=256))
fashion_acc = float((out.argmax(1) == y).float().mean())
print(f"ResidualCNN on Fashion-MNIST: test accuracy {fashion_acc:.4f} ({len(fashion_train):,} training images, "
      f"{fashion_hist.seconds:.0f} s)")
per_class = {c: float((out.argmax(1)[y == i] == i).float().mean()) for i, c in enumerate(FASHION_CLASSES)}
print("per class:", {c: round(a, 3) for c, a in per_class.items()})

# %% [markdown]
# ## 7. Inside the CNN: learned filters and feature maps
#
# The first layer's kernels of the MNIST model, learned from data (red positive, blue negative).
# Look for oriented edge and stroke detectors, relatives of the Sobel kernels above.

# %%
mnist_model = mnist_models[best_mnist].cpu().eval()
fig = plt.figure(figsize=(8, 2.2))
plot_filters(fig, mnist_model.first_conv.weight, ncols=8,
             title=f"{best_mnist}: the {mnist_model.first_conv.weight.shape[0]} learned first-layer kernels")
plt.show()

# %% [markdown]
# Each layer's output is a stack of **feature maps**, one per channel: where in the image its
# filter fired. Early maps still look like filtered digits (edges, strokes); deeper ones are
# coarser and more abstract (which parts are present), and smaller, because pooling or stride
# halved them. Move the controls: image, layer, channel. (The activations are computed once, so the
# panel redraws instantly.)

# %%
sample = mnist_test.x[:16]  # [16, 1, 28, 28]
maps = mnist_model.feature_maps(sample)
preds = mnist_model(sample).argmax(1)
print({k: tuple(v.shape) for k, v in maps.items()})
feature_panel = feature_map_panel(
    sample, maps, titles=[f"label {int(t)}, predicted {int(p)}" for t, p in zip(mnist_test.y[:16], preds)])
feature_panel

# %% [markdown]
# ## 8. A CNN on sound: log-Mel spectrograms of spoken digits
#
# A log-Mel spectrogram is an image: frequency (40 Mel bands) by time (101 frames of 10 ms).
# A spoken "seven" is a pattern in it (formants moving, a hiss for the "s"), and a CNN finds it
# the same way it finds strokes in a digit. FSDD's official split: takes 0-4 of every speaker
# and digit are the test set (300 recordings), the rest (2,700) train.

# %%
fsdd_train, fsdd_test = FSDD("train"), FSDD("test")
cfg = FeatureConfig("logmel")
spec_train = cached_features("fsdd-train", fsdd_train.waves, cfg)  # [2700, 40, 101] dB
spec_test = cached_features("fsdd-test", fsdd_test.waves, cfg)  # [300, 40, 101]
print(fsdd_train, fsdd_test, tuple(spec_train.shape), tuple(spec_test.shape))  # NBVAL_CHECK_OUTPUT

fig, ax = plt.subplots(1, 5, figsize=(10, 2))
for j, d in enumerate([0, 3, 5, 7, 9]):
    i = int((fsdd_train.labels == d).nonzero()[0])
    ax[j].imshow(spec_train[i], origin="lower", aspect="auto", cmap="magma")
    ax[j].set_title(f'"{d}" ({fsdd_train.speakers[i]})', fontsize=9)
    ax[j].set_xlabel("frame")
ax[0].set_ylabel("Mel band")
plt.show()

# %%
# Validation: 300 of the 2,700 training recordings (the test takes stay untouched until the end).
perm = torch.randperm(len(spec_train), generator=torch.Generator().manual_seed(0))
val_idx, train_idx = perm[:300], perm[300:][:FSDD_TRAIN]
spec_train_set = TensorData(spec_train[train_idx], fsdd_train.labels[train_idx], fsdd_train.classes)
spec_val_set = TensorData(spec_train[val_idx], fsdd_train.labels[val_idx], fsdd_train.classes)
spec_test_set = TensorData(spec_test, fsdd_test.labels, fsdd_test.classes)
spec_model = SpectrogramCNN(n_mels=cfg.n_mels, width=16)
spec_hist = train(spec_model, spec_train_set, spec_val_set, FSDD_EPOCHS, lr=4e-3, batch_size=64)
out, y = predict(spec_model, loaders(spec_test_set, batch_size=300))
fsdd_acc = float((out.argmax(1) == y).float().mean())
print(f"SpectrogramCNN ({count_parameters(spec_model):,} parameters) on FSDD log-Mel: test accuracy {fsdd_acc:.4f} "
      f"({spec_hist.seconds:.0f} s)")

# %% [markdown]
# ## 9. Detection and segmentation, in brief
#
# Classification says *what*; **detection** also says *where*, with a box per object, and
# **segmentation** labels every pixel. Detectors (Faster R-CNN, YOLO, DETR) put a CNN backbone
# under heads that predict, for many candidate positions, a class and a box; duplicates are
# removed with non-maximum suppression. Boxes and masks are both scored by
# **intersection over union**, IoU = |A ∩ B| / |A ∪ B| (1 = perfect overlap, 0 = none):

# %%
boxes_a = torch.tensor([[0.0, 0, 10, 10]])  # (x1, y1, x2, y2)
boxes_b = torch.tensor([[0.0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30]])
print("box IoU:", box_iou(boxes_a, boxes_b).numpy().round(4))  # NBVAL_CHECK_OUTPUT (25 / 175 = 0.1429)

# %% [markdown]
# A **fully convolutional** network segments: no dense layer, so it maps an image to an image
# of class scores. Our **U-Net** downsamples twice to see context, upsamples back with
# transposed convolutions, and concatenates each encoder level into the decoder (skip
# connections) so the edges stay sharp. The data: generated images with circles, squares and
# triangles of random size, position and brightness on a noisy background, with a class per
# pixel. Brightness says nothing about the class, so the network has to use shape.

# %%
seg_train, seg_val, seg_test = shapes(SEG_TRAIN, seed=0), shapes(100, seed=1), shapes(500, seed=2)
print(seg_train, seg_test, SHAPE_CLASSES, sep="\n")
unet = TinyUNet(in_channels=1, num_classes=len(SHAPE_CLASSES), width=12)
seg_hist = train(unet, seg_train, seg_val, SEG_EPOCHS, lr=1e-2, batch_size=pick(fast=16, full=32))  # best epoch by val pixel accuracy
logits, masks = predict(unet, torch.utils.data.DataLoader(seg_test, batch_size=100))  # in order, for the plot
seg_pred = logits.argmax(1)  # [500, 32, 32]
seg_iou = iou_per_class(seg_pred, masks, len(SHAPE_CLASSES))
seg_miou = mean_iou(seg_pred, masks, len(SHAPE_CLASSES))
print({c: round(float(v), 3) for c, v in zip(SHAPE_CLASSES, seg_iou)},
      f"| mean IoU over the shapes: {seg_miou:.4f} | {count_parameters(unet):,} parameters "
      f"| {seg_hist.seconds:.0f} s")
fig = plt.figure(figsize=(10, 4.2))
plot_segmentation(fig, seg_test.x, masks, seg_pred, n=8, classes=SHAPE_CLASSES)
plt.show()

# %% [markdown]
# ## Checks
#
# Every number above, recorded with its target for this mode, and every claim the text makes.

# %%
rec.record("mnist_cnn_test_acc", mnist_acc[best_mnist], target=pick(fast=0.90, full=0.985))
rec.record("mnist_lenet_test_acc", mnist_acc["LeNet"])
rec.record("mnist_resnet_test_acc", mnist_acc["ResidualCNN"])
rec.record("fashion_cnn_test_acc", fashion_acc, target=pick(fast=0.7, full=0.92))
rec.record("fsdd_logmel_cnn_test_acc", fsdd_acc, target=pick(fast=0.55, full=0.98))
rec.record("shapes_unet_mean_iou", seg_miou, target=pick(fast=0.4, full=0.90))

# The written-out convolution (loops, unfold) and pooling equal PyTorch's; the shape formula matches.
assert loops_ok and all(conv_ok) and all(pool_ok)
assert all(out_size(n, k, s, p, d) == out_shape((n, n), k, s, p, d)[0] for n, k, s, p, d in rows)
# Blurring lowers the total variation, sharpening raises it.
assert tv["gaussian blur"] < tv["input"] < tv["sharpen"]
# The receptive field formula agrees with the gradient; LeNet sees 16x16.
assert rf_rows == receptive_field(lenet_layers) == 16
# Larger pooling windows make the edge map less sensitive to a one-pixel shift.
assert shift[1] > shift[2] > shift[4] > shift[8]
# The model shown was chosen on validation accuracy.
assert mnist_hist[best_mnist].best["val_acc"] == max(h.best["val_acc"] for h in mnist_hist.values())
# Clothes are harder than digits.
assert fashion_acc < mnist_acc[best_mnist]
# Both MNIST CNNs, the Fashion CNN and the FSDD CNN are far above chance (0.10); IoU box example.
assert min(mnist_acc.values()) > 0.3 and fashion_acc > 0.3 and fsdd_acc > 0.3
assert torch.allclose(box_iou(boxes_a, boxes_b), torch.tensor([[1.0, 25 / 175, 0.0]]))
# Feature maps shrink with depth; the panel redraws when a control moves.
sizes = [v.shape[-1] for v in maps.values()]
assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]
assert feature_panel.set(channel=3) != feature_panel.set(channel=4)
print(rec.check_targets())

# %% [markdown]
# ## Exercises
#
# Solutions: `notebooks/solutions/03_convolutions.py` (the tests run them).
#
# 1. **Stride and padding by hand.** Extend `conv2d_loops` to any stride and padding (pad
#    with `F.pad`, step `i` and `j` by the stride) and check it against `F.conv2d` for
#    stride 2, padding 1 on a random `[3, 9, 9]` input; check the output size against `out_size`.
# 2. **Receptive field of the residual CNN.** Work out with `receptive_field` how much of the
#    28x28 image one pixel of `ResidualCNN`'s `stage3` output sees (stem conv, pool, two 3x3
#    convs per block, strides in stages 2 and 3; the 1x1 shortcut adds nothing). Confirm it
#    with the gradient trick of section 3.
# 3. **Learn the Sobel kernel.** Fit a single `nn.Conv2d(1, 1, 3, padding=1, bias=False)` by
#    gradient descent so that its output on the grey cat matches `filter_image(cat, KERNELS["sobel x"])`.
#    Which kernel does it learn? (One image is enough: every pixel is a training example.)
