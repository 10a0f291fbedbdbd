"""Golden fixtures for package ddpm: the seed's noise schedules as PyTorch computes them.
Run from the repository root: /usr/bin/python3 ddpm/testdata/gen_fixtures.py"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "pyref"))
import seed  # noqa: E402

out = {}
for kind in ("linear", "cosine"):
    for T in (1000, 7):
        s = seed.NoiseSchedule(T, kind)
        out[f"{kind}_{T}"] = {"betas": s.betas.tolist(), "alphas_cumprod": s.alphas_cumprod.tolist()}
with open(os.path.join(here, "schedules.json"), "w") as f:
    json.dump(out, f)
