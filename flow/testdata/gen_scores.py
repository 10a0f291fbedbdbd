"""Writes a seed-format checkpoint of the seed's default LatentVelocityEstimator (in 128,
base 64, time 128, 4 blocks) and PyTorch's scores for it, for flow/score_test.go and
ddpm/score_test.go. The .pth is 5.5 MB, so it is made at test time, not committed:
    /usr/bin/python3 flow/testdata/gen_scores.py OUTDIR
writes OUTDIR/fm.pth, OUTDIR/ddpm.pth (same weights, with noise_schedule) and OUTDIR/expect.json."""
import json
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "pyref"))
import seed  # noqa: E402

out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
m = seed.LatentVelocityEstimator()
m.eval()
# Latents of the default channel count on a small grid (any D, H, W must work).
z = torch.randn(3, 128, 2, 4, 4)
args = {"base_channels": 64, "time_dim": 128, "num_res_blocks": 4, "epochs": 100, "lr": 1e-4}
torch.save({"model": m.state_dict(), "args": args, "epoch": 100, "loss": 0.5}, os.path.join(out, "fm.pth"))
sch = seed.NoiseSchedule(1000, "cosine")
torch.save({"model": m.state_dict(), "args": dict(args, timesteps=1000, schedule_type="cosine"),
            "epoch": 100, "loss": 0.5, "noise_schedule": {"timesteps": 1000, "schedule_type": "cosine"}},
           os.path.join(out, "ddpm.pth"))

exp = {"z": z.flatten().tolist(), "shape": list(z.shape)}
exp["round_trip_euler_50"] = seed.score_round_trip(m, z, 50).tolist()
exp["round_trip_euler_7"] = seed.score_round_trip(m, z, 7).tolist()
# Random scores: PyTorch's generator differs from latentad's, so these are compared as
# means within their sampling error: keep the per-draw values.
K = 200
g = torch.Generator().manual_seed(1)
draws = []
with torch.no_grad():
    for small in (None, 100):
        per = []
        for _ in range(K):
            per.append(seed.score_ddpm(m, z, sch, n_samples=1, t_max=small, gen=g).tolist())
        draws.append(per)
    mse = []
    for _ in range(K):
        mse.append(seed.score_mse_multi_t(m, z, n_samples=1, gen=g).tolist())
exp["ddpm_draws"], exp["ddpm_small_draws"], exp["mse_multi_t_draws"] = draws[0], draws[1], mse
with open(os.path.join(out, "expect.json"), "w") as f:
    json.dump(exp, f)
