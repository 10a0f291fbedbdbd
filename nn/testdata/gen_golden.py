#!/usr/bin/env python3
"""Golden fixtures for package nn, computed by PyTorch.

Run from the repository root with Debian's python3-torch:

    /usr/bin/python3 nn/testdata/gen_golden.py

It rewrites nn/testdata/*.st. The models below are the seed's LatentVelocityEstimator and
Tiny3DAE exactly as SPEC.md §1.4 and §2 describe them, with the seed's module names so the
state_dict keys are the ones latentad uses.

File format ("safetensors" layout, written here without the safetensors package): an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
{str: str}}, then the raw little-endian data. Weights and inputs are rounded to float16 and
stored as F16 (half the bytes, and exactly representable in float32, so both sides start from
bit-identical numbers). References are computed in float64 from those values and stored as F32;
the metadata also records how far PyTorch's own float32 run is from the float64 reference, which
shows the Go tolerances are ones float32 arithmetic can meet.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.dirname(os.path.abspath(__file__))


# ---- the seed's models: pyref/seed.py, the one PyTorch reference of the repository ----

sys.path.insert(0, os.path.join(OUT, "..", "..", "pyref"))
from seed import LatentVelocityEstimator, ResBlock as ResBlock3D, TimeEmbedding as SinusoidalTimeEmbedding, Tiny3DAE  # noqa: E402,F401


# ---- fixture writing ---------------------------------------------------------------------

def half(x):
    """Rounds to float16 and back: the value both sides use, exactly."""
    return torch.as_tensor(x).to(torch.float16).to(torch.float32)


def randomise(model, gen):
    """PyTorch's default init (seeded), GroupNorm affine made non-trivial, all rounded to fp16."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if isinstance(dict(model.named_modules())[name.rsplit(".", 1)[0]], nn.GroupNorm):
                if name.endswith("weight"):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            p.copy_(half(p))


def write(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        arr = np.ascontiguousarray(arr.detach().cpu().numpy() if torch.is_tensor(arr) else arr)
        raw = arr.astype("<f2" if dtype == "F16" else "<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(f"{os.path.basename(path)}: {8 + len(h) + off} bytes")


def rel(a, ref):
    """The tests' measure: max|a - ref| / max|ref|."""
    return float((a.double() - ref.double()).abs().max() / ref.double().abs().max())


def grads_of(model, loss_fn):
    model.zero_grad()
    loss = loss_fn()
    loss.backward()
    return loss, {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def golden(model, inputs, forward, target, extra=None):
    """Float64 forward, MSE loss against target and gradients, plus the float32 run's error."""
    out = {}
    m64 = model.double()
    in64 = [x.double() for x in inputs]
    loss, g64 = grads_of(m64, lambda: F.mse_loss(forward(m64, *in64), target.double()))
    y64 = forward(m64, *in64).detach()
    m32 = model.float()
    loss32, g32 = grads_of(m32, lambda: F.mse_loss(forward(m32, *inputs), target))
    y32 = forward(m32, *inputs).detach()
    meta = {
        "loss": repr(float(loss)),
        "keys": [k for k, _ in model.named_parameters()],
        "torch_f32_forward_rel": rel(y32, y64),
        "torch_f32_grad_rel": {k: rel(g32[k], g64[k]) for k in g64},
    }
    return y64, g64, meta


def params_f16(model):
    return {"param/" + k: ("F16", p.detach().float().clone()) for k, p in model.named_parameters()}


def velocity_fixture(gen):
    cfg = dict(in_channels=8, base_channels=16, time_dim=16, num_res_blocks=2)
    model = LatentVelocityEstimator(**cfg)
    randomise(model, gen)
    z = half(torch.randn(2, 8, 4, 6, 8, generator=gen))
    t = half(torch.rand(2, generator=gen))
    target = half(torch.randn(2, 8, 4, 6, 8, generator=gen))
    fwd = lambda m, z, t: m(z, t)
    y, g, meta = golden(model, [z, t], fwd, target)
    meta["config"] = cfg
    tensors = params_f16(model)
    tensors.update({"in/z": ("F16", z), "in/t": ("F16", t), "in/target": ("F16", target), "out/v": ("F32", y)})
    # The time embedding on its own, at the seed's time_dim, over the range flow matching and
    # DDPM (t/T) use.
    et = torch.tensor([0.0, 1e-3, 0.0123, 0.25, 0.5, 0.999, 1.0])
    tensors.update({"emb/t": ("F32", et), "emb/128": ("F32", SinusoidalTimeEmbedding(128)(et.double()))})
    tensors.update({"grad/" + k: ("F32", v) for k, v in g.items()})
    write(os.path.join(OUT, "velocity.st"), tensors, meta)


def skip_block_fixture(gen):
    # The seed's velocity model never builds a block with in != out channels (SPEC §2), but
    # its ResBlock supports one (1×1 Conv3d + GroupNorm skip); this checks ours against it.
    cfg = dict(in_channels=4, out_channels=16, time_dim=4)
    block = ResBlock3D(4, 16, 4)
    randomise(block, gen)
    x = half(torch.randn(2, 4, 3, 4, 5, generator=gen))
    t = half(torch.rand(2, generator=gen))
    target = half(torch.randn(2, 16, 3, 4, 5, generator=gen))
    emb = SinusoidalTimeEmbedding(4)
    fwd = lambda m, x, t: m(x, emb(t))
    y, g, meta = golden(block, [x, t], fwd, target)
    meta["config"] = cfg
    tensors = params_f16(block)
    tensors.update({"in/x": ("F16", x), "in/t": ("F16", t), "in/target": ("F16", target), "out/y": ("F32", y)})
    tensors.update({"grad/" + k: ("F32", v) for k, v in g.items()})
    write(os.path.join(OUT, "skipblock.st"), tensors, meta)


def ae_fixture(gen):
    # Base 2 keeps the fixture small (every parameter's gradient is stored); the code paths
    # are those of base 16.
    base = 2
    model = Tiny3DAE(base)
    randomise(model, gen)
    x = half(torch.rand(2, 1, 16, 16, 16, generator=gen) * 2 - 1)
    target = half(torch.rand(2, 1, 16, 16, 16, generator=gen) * 2 - 1)
    fwd = lambda m, x: m(x)
    y, g, meta = golden(model, [x], fwd, target)
    meta["base"] = base
    with torch.no_grad():
        lat = model.double().enc(x.double())
        model.float()
    tensors = params_f16(model)
    tensors.update({"in/x": ("F16", x), "in/target": ("F16", target), "out/recon": ("F32", y),
                    "out/latent": ("F32", lat)})
    tensors.update({"grad/" + k: ("F32", v) for k, v in g.items()})
    write(os.path.join(OUT, "ae.st"), tensors, meta)


def adam_fixture(gen):
    # Three float32 training steps of torch.optim.Adam (lr 1e-3, PyTorch 1.13 single-tensor
    # path) on a small velocity model, each on its own batch. Base 16 keeps two channels per
    # GroupNorm group: with one, the biases before a norm have a zero gradient and Adam's
    # update of them would be rounding noise. No residual blocks, to stay small (the velocity
    # fixture covers them).
    cfg = dict(in_channels=2, base_channels=16, time_dim=4, num_res_blocks=0)
    model = LatentVelocityEstimator(**cfg)
    randomise(model, gen)
    tensors = params_f16(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    keys = [k for k, _ in model.named_parameters()]
    for step in (1, 2, 3):
        z = half(torch.randn(2, 2, 3, 4, 5, generator=gen))
        t = half(torch.rand(2, generator=gen))
        target = half(torch.randn(2, 2, 3, 4, 5, generator=gen))
        tensors.update({f"in{step}/z": ("F16", z), f"in{step}/t": ("F16", t), f"in{step}/target": ("F16", target)})
        opt.zero_grad()
        F.mse_loss(model(z, t), target).backward()
        if step == 1:
            tensors.update({"grad1/" + k: ("F32", p.grad.clone()) for k, p in model.named_parameters()})
        opt.step()
        if step in (1, 3):
            for k, p in model.named_parameters():
                st = opt.state[p]
                # clone: the optimiser updates these tensors in place on later steps
                tensors[f"p{step}/{k}"] = ("F32", p.detach().clone())
                tensors[f"m{step}/{k}"] = ("F32", st["exp_avg"].clone())
                tensors[f"v{step}/{k}"] = ("F32", st["exp_avg_sq"].clone())
    meta = {"config": cfg, "keys": keys, "lr": "1e-3", "torch": torch.__version__}
    write(os.path.join(OUT, "adam.st"), tensors, meta)


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(20261128)
    torch.manual_seed(1)  # module initialisation
    velocity_fixture(gen)
    skip_block_fixture(gen)
    ae_fixture(gen)
    adam_fixture(gen)


if __name__ == "__main__":
    main()
