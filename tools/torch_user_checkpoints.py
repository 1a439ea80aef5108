#!/usr/bin/python3
"""torch_user_checkpoints: checkpoints as a PyTorch user writes them, and torch's own figures.

    /usr/bin/python3 tools/torch_user_checkpoints.py DIR

The models here are written the way a PyTorch user writes them (plain ``nn.Module`` classes,
``nn.Sequential``, torchvision's ``resnet18`` adapted to CIFAR), independently of
tools/torch_models.py (regula's own twins), so a test sees whether regula reads a
``state_dict`` that did not come from regula. Each is saved with
``write_safetensors(path, {k: v.numpy() for k, v in model.state_dict().items()}, metadata)``
(the safetensors format written by hand in torch_bridge.py; the ``safetensors`` package is not
installed here), with metadata in the plain strings a user writes (``{"model": "lenet",
"activation": "tanh"}``) or none.

Inputs in DIR (written by tests/torch_user_checkpoint_test.ts): ``mnist.safetensors``
(``xtr``, ``ytr``, ``xte``, ``yte``; pixels in [0, 1]) and ``toy.safetensors`` (``x``, ``y``).
Outputs in DIR: ``lenet.safetensors``, ``ddnet.safetensors``, ``resnet18.safetensors``,
``mlp.safetensors``, ``linear.safetensors`` (see ``main``), a tiny IDX dataset of 1x32x32
random images in ``idx/`` (for DDNet and ResNet-18), and
``torch.json``: per model the accuracy and mean cross-entropy on the data it is evaluated on,
and for LeNet the FGSM accuracy (ε 0.1, 0.2) and the accuracy under 10 steps of PGD without
random start (torchattacks' PGD: ``x + alpha * sign(grad)``, alpha 0.01, projected on the ε-ball
and [0, 1]; ε 0.05, 0.1).
Accuracy under attack counts a sample robust when it is classified correctly both clean and
attacked, as regula's ``robustness`` does.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bridge import read_safetensors, write_safetensors  # noqa: E402

FGSM_EPS = [0.1, 0.2]
PGD_EPS, PGD_ALPHA, PGD_STEPS = [0.05, 0.1], 0.01, 10
MNIST_NORM = (0.1307, 0.3081)
GRAY_NORM = ([0.45], [0.25])


class LeNet(nn.Module):
    """LeNet-5 as the PyTorch tutorials write it (tanh, max-pools)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.max_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


class DDNet(nn.Module):
    """Hoffman, Roberts & Yaida 2019's CIFAR-10 network, with dropout 0.5."""

    def __init__(self, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3)
        self.conv2 = nn.Conv2d(64, 64, 3)
        self.conv3 = nn.Conv2d(64, 128, 3)
        self.conv4 = nn.Conv2d(128, 128, 3)
        self.fc1 = nn.Linear(128 * 5 * 5, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 10)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.max_pool2d(F.relu(self.conv4(F.relu(self.conv3(x)))), 2)
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc3(self.drop(F.relu(self.fc2(x))))


def cifar_resnet18(in_channels=3):
    """torchvision's resnet18 with the usual CIFAR stem: 3x3 conv1, no max-pool."""
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    m.maxpool = nn.Identity()
    # BatchNorm statistics away from (0, 1) so that eval mode is not the identity.
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
            mod.num_batches_tracked.fill_(7)
    return m


class Normalized(nn.Module):
    """(x - mean) / std before a model: the user's transforms.Normalize, moved inside."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.model = model
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


def save(path, model, metadata=None):
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    write_safetensors(path, state, metadata)


def figures(f, x, y):
    """Accuracy and mean cross-entropy of f on (x, y); also the per-sample correctness."""
    with torch.no_grad():
        z = f(x)
    correct = z.argmax(1) == y
    return {"accuracy": correct.double().mean().item(),
            "loss": F.cross_entropy(z.double(), y).item(), "count": len(y)}, correct


def attacked(f, x, y, correct, eps, steps, alpha):
    """Robust accuracy under FGSM (steps=1, alpha=eps) or PGD from x (no random start)."""
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(f(adv), y)
        g, = torch.autograd.grad(loss, adv)
        adv = adv.detach() + alpha * g.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    with torch.no_grad():
        ok = f(adv).argmax(1) == y
    return (ok & correct).double().mean().item()


def idx_file(path, a):
    """An IDX file of u8 (magic 0x08, rank, big-endian u32 dims, the bytes)."""
    with open(path, "wb") as fh:
        fh.write(bytes([0, 0, 8, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes())
        fh.write(a.astype(np.uint8).tobytes())


def gray32(dir_):
    """A tiny IDX dataset of 1x32x32 random images (2 training, 48 test) in DIR/idx; the test
    labels are written later (write_labels)."""
    out = os.path.join(dir_, "idx")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    idx_file(os.path.join(out, "train-images-idx3-ubyte"), rng.integers(0, 256, (2, 32, 32)))
    idx_file(os.path.join(out, "train-labels-idx1-ubyte"), np.array([3, 7]))
    b = rng.integers(0, 256, (48, 32, 32))
    idx_file(os.path.join(out, "t10k-images-idx3-ubyte"), b)
    # pixels / 255 computed in float64 and rounded once, as regula's loader does
    x = torch.from_numpy((b.astype(np.float64) / 255).astype(np.float32).reshape(-1, 1, 32, 32))
    return out, x, rng


def main(dir_):
    torch.manual_seed(0)
    result = {}

    # LeNet on MNIST, trained for one epoch (batch 20) on 2000 images with the usual Normalize.
    m = read_safetensors(os.path.join(dir_, "mnist.safetensors"))[0]
    xtr, ytr = torch.from_numpy(m["xtr"]), torch.from_numpy(m["ytr"]).long()
    xte, yte = torch.from_numpy(m["xte"]), torch.from_numpy(m["yte"]).long()
    lenet = LeNet()
    f = Normalized(lenet, [MNIST_NORM[0]], [MNIST_NORM[1]])
    opt = torch.optim.SGD(lenet.parameters(), lr=0.05, momentum=0.9)
    for i in range(0, len(ytr), 20):
        opt.zero_grad()
        F.cross_entropy(f(xtr[i:i + 20]), ytr[i:i + 20]).backward()
        opt.step()
    lenet.eval()
    r, correct = figures(f, xte, yte)
    r["fgsm"] = [attacked(f, xte, yte, correct, e, 1, e) for e in FGSM_EPS]
    r["pgd"] = [attacked(f, xte, yte, correct, e, PGD_STEPS, PGD_ALPHA) for e in PGD_EPS]
    result["lenet"] = r
    save(os.path.join(dir_, "lenet.safetensors"), lenet, {"model": "lenet", "activation": "tanh"})

    # DDNet and ResNet-18 on tiny random 1x32x32 images (CIFAR's binary files must hold 10000
    # records each; the architectures are the same with one input channel), untrained; a
    # quarter of the labels are DDNet's predictions and a quarter ResNet's, so that accuracy
    # tells the models' argmax apart from chance.
    out, x, rng = gray32(dir_)
    ddnet = DDNet(1).eval()
    fd = Normalized(ddnet, *GRAY_NORM)
    resnet = cifar_resnet18(1).eval()
    with torch.no_grad():
        pred_d, pred_r = fd(x).argmax(1).numpy(), resnet(x).argmax(1).numpy()
    k = np.arange(48) % 4
    labels = np.where(k == 0, pred_d, np.where(k == 1, pred_r, rng.integers(0, 10, size=48)))
    idx_file(os.path.join(out, "t10k-labels-idx1-ubyte"), labels)
    y = torch.from_numpy(labels).long()
    result["ddnet"] = figures(fd, x, y)[0]
    result["resnet18"] = figures(resnet, x[:16], y[:16])[0]
    save(os.path.join(dir_, "ddnet.safetensors"), ddnet)  # no metadata at all
    save(os.path.join(dir_, "resnet18.safetensors"), resnet, {"model": "ResNet-18"})

    # MLPs on the 2-D toy problem: an nn.Sequential (keys 1.weight, 3.weight, ...) and the seed
    # study's bare Linear(2 -> 4, bias=False) (key "weight").
    t = read_safetensors(os.path.join(dir_, "toy.safetensors"))[0]
    tx, ty = torch.from_numpy(t["x"]), torch.from_numpy(t["y"]).long()
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                        nn.Linear(16, 4)).eval()
    result["mlp"] = figures(mlp, tx, ty)[0]
    save(os.path.join(dir_, "mlp.safetensors"), mlp,
         {"model": "mlp", "activation": "relu", "dataset": "toy2d"})
    linear = nn.Linear(2, 4, bias=False).eval()
    result["linear"] = figures(linear, tx, ty)[0]
    save(os.path.join(dir_, "linear.safetensors"), linear)

    with open(os.path.join(dir_, "torch.json"), "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
