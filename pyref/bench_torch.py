"""PyTorch's figures for the fields `latentad bench --json` prints, on the same shapes, best of N
after a warm-up. Run beside latentad in the same session (these machines are noisy):
    /usr/bin/python3 pyref/bench_torch.py --threads 2 --batch_size 4
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch_size", type=int, default=4)
ap.add_argument("--repeat", type=int, default=5)
ap.add_argument("--skip_model", action="store_true")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
B, n = a.batch_size, a.repeat


def best(f):
    f()
    b = 1e300
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t0)
    return b


out = {"device": "torch " + torch.__version__, "threads": a.threads, "batch_size": B, "kernels": {}}
k = out["kernels"]
x = torch.randn(B, 64, 8, 16, 16, requires_grad=True)
w = torch.randn(64, 64, 3, 3, 3, requires_grad=True)
bias = torch.randn(64, requires_grad=True)
flops = 2.0 * B * 64 * 64 * 27 * 8 * 16 * 16
with torch.no_grad():
    k["conv3d_fwd_gflops"] = flops / best(lambda: F.conv3d(x, w, bias, padding=1)) / 1e9
y = F.conv3d(x, w, bias, padding=1)
gy = torch.randn_like(y)
k["conv3d_bwd_data_gflops"] = flops / best(lambda: torch.autograd.grad(y, x, gy, retain_graph=True)) / 1e9
k["conv3d_bwd_weight_gflops"] = flops / best(lambda: torch.autograd.grad(y, [w, bias], gy, retain_graph=True)) / 1e9
gn = torch.nn.GroupNorm(8, 64)
xd = x.detach()
nbytes = 4.0 * xd.numel()
with torch.no_grad():
    k["group_norm_fwd_gbs"] = 2 * nbytes / best(lambda: gn(xd)) / 1e9
    k["silu_fwd_gbs"] = 2 * nbytes / best(lambda: F.silu(xd)) / 1e9
    yd = torch.randn_like(xd)
    k["axpy_gbs"] = 3 * nbytes / best(lambda: yd.add_(xd, alpha=0.5)) / 1e9

if not a.skip_model:
    m = seed.LatentVelocityEstimator()
    z = torch.randn(B, 128, 8, 16, 16)
    t = torch.rand(B)
    with torch.no_grad():
        out["forward_s"] = best(lambda: m(z, t))
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)

    def step():
        z1 = torch.randn_like(z)
        tt = torch.rand(B)
        zt = (1 - tt[:, None, None, None, None]) * z + tt[:, None, None, None, None] * z1
        loss = F.mse_loss(m(zt, tt), z1 - z)
        opt.zero_grad()
        loss.backward()
        opt.step()

    out["train_step_s"] = best(step)
    ae = seed.Tiny3DAE(16)
    vol = torch.randn(1, 1, 64, 128, 128)
    with torch.no_grad():
        out["ae_encode_s"] = best(lambda: ae.enc(vol))
print(json.dumps(out))
