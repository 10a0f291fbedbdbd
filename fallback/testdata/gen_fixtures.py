"""Golden fixtures for package fallback, from PyTorch (Debian python3-torch, 1.13).

Run from anywhere (or `make fixtures`):

    /usr/bin/python3 fallback/testdata/gen_fixtures.py

adam_<name>.f32: little-endian float32, n = 500 parameters, 3 steps of
torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=<wd>):
    p0[n], then per step: g[n], p[n], m[n], v[n] (the state after the step).
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
