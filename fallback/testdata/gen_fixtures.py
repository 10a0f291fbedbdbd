"""Golden fixtures for package fallback, from PyTorch (Debian python3-torch, 1.13).

Run from anywhere (or `make fixtures`):

    /usr/bin/python3 fallback/testdata/gen_fixtures.py

adam_<name>.f32: little-endian float32, n = 500 parameters, 3 steps of
torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=<wd>):
    p0[n], then per step: g[n], p[n], m[n], v[n] (the state after the step).
ops.bin: each op's forward and backward in PyTorch (see the container format below).
"""
import os

import numpy as np
import torch

N, STEPS, LR = 500, 3, 1e-3
here = os.path.dirname(os.path.abspath(__file__))

for name, wd in [("wd0", 0.0), ("wd001", 0.01)]:
    torch.manual_seed(7)
    p = torch.nn.Parameter(torch.randn(N))
    opt = torch.optim.Adam([p], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    out = [p.detach().clone().numpy()]
    for step in range(STEPS):
        # Mixed scales, as real gradients have; some tiny so eps matters.
        g = torch.randn(N) * 1e-2
        g[::7] *= 1e-4
        p.grad = g.clone()
        opt.step()
        st = opt.state[p]
        out += [g.numpy(), p.detach().clone().numpy(), st["exp_avg"].numpy().copy(), st["exp_avg_sq"].numpy().copy()]
    np.concatenate(out).astype("<f4").tofile(os.path.join(here, f"adam_{name}.f32"))
print("wrote", here)


# ops.bin: one forward and backward of each op in PyTorch, to check that the CPU device reads
# the ops as PyTorch does (layouts, ConvTranspose3d's weight, GroupNorm's statistics).
# Container: b"LTF1", uint32 count, then per tensor: uint16 name length, name, uint8 ndim,
# uint32 dims…, float32 data (all little-endian).
import struct

torch.manual_seed(11)
tensors = {}


def put(name, t):
    tensors[name] = t.detach().contiguous().float()


def conv_case(prefix, x_shape, w_shape, stride, pad):
    x = torch.randn(*x_shape, requires_grad=True)
    w = torch.randn(*w_shape, requires_grad=True)
    b = torch.randn(w_shape[0], requires_grad=True)
    y = torch.nn.functional.conv3d(x, w, b, stride=stride, padding=pad)
    dy = torch.randn_like(y)
    y.backward(dy)
    for k, v in dict(x=x, w=w, b=b, y=y, dy=dy, dx=x.grad, dw=w.grad, db=b.grad).items():
        put(f"{prefix}.{k}", v)


conv_case("conv_k3s1p1", (2, 3, 5, 6, 7), (4, 3, 3, 3, 3), 1, 1)
conv_case("conv_k4s2p1", (1, 3, 6, 8, 10), (5, 3, 4, 4, 4), 2, 1)
conv_case("conv_k1s1p0", (2, 5, 3, 4, 5), (3, 5, 1, 1, 1), 1, 0)

# ConvTranspose3d(4 → 3, k4, s2, p1): weight (in, out, k…).
z = torch.randn(2, 4, 3, 4, 5)
wt = torch.randn(4, 3, 4, 4, 4)
put("convT.x", z)
put("convT.w", wt)
put("convT.y", torch.nn.functional.conv_transpose3d(z, wt, stride=2, padding=1))

# GroupNorm(4 groups, 12 channels), with the saved statistics.
x = torch.randn(2, 12, 3, 4, 5) * 2 + 0.5
x.requires_grad_(True)
gamma = torch.randn(12, requires_grad=True)
beta = torch.randn(12, requires_grad=True)
y = torch.nn.functional.group_norm(x, 4, gamma, beta, eps=1e-5)
dy = torch.randn_like(y)
y.backward(dy)
_, mean, rstd = torch.ops.aten.native_group_norm(x.detach(), gamma.detach(), beta.detach(), 2, 12, 60, 4, 1e-5)
for k, v in dict(x=x, gamma=gamma, beta=beta, y=y, mean=mean, rstd=rstd, dy=dy, dx=x.grad,
                 dgamma=gamma.grad, dbeta=beta.grad).items():
    put(f"gn.{k}", v)

# Activations over [-8, 8] and their gradients.
xa = torch.linspace(-8, 8, 1001)
dya = torch.randn(1001)
put("act.x", xa)
put("act.dy", dya)
for name, fn in [("relu", torch.relu), ("silu", torch.nn.functional.silu), ("tanh", torch.tanh)]:
    xi = xa.clone().requires_grad_(True)
    yi = fn(xi)
    yi.backward(dya)
    put(f"act.{name}.y", yi)
    put(f"act.{name}.dx", xi.grad)

with open(os.path.join(here, "ops.bin"), "wb") as f:
    f.write(b"LTF1" + struct.pack("<I", len(tensors)))
    for name, t in tensors.items():
        nb = name.encode()
        f.write(struct.pack("<H", len(nb)) + nb + struct.pack("<B", t.dim()))
        f.write(struct.pack(f"<{t.dim()}I", *t.shape))
        f.write(t.numpy().astype("<f4").tobytes())
print("wrote ops.bin with", len(tensors), "tensors")
