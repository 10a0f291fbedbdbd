"""The seed's PyTorch pipeline, written from ../shared/SPEC.md: the reference latentad is
checked against. Fixture generators import it (run them with /usr/bin/python3, Debian's
python3-torch). Only the parts the golden tests need live here."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class TimeEmbedding(nn.Module):
    """emb(t) = [sin(t·f), cos(t·f)], f_i = exp(-i·ln(10000)/(half-1)); in t's dtype, so the
    golden references can run the whole model in float64."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=t.dtype) * -scale)
        args = t[:, None] * freqs[None, :]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class TimeMLP(nn.Module):
    def __init__(self, time_dim, out):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(time_dim, out), nn.SiLU(), nn.Linear(out, out))

    def forward(self, e):
        return self.mlp(e)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, time_dim, groups=8):
        super().__init__()
        self.time_mlp = TimeMLP(time_dim, cout)
        self.conv1 = nn.Conv3d(cin, cout, 3, 1, 1)
        self.norm1 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, 1, 1)
        self.norm2 = nn.GroupNorm(groups, cout)
        if cin != cout:
            self.skip = nn.Sequential(nn.Conv3d(cin, cout, 1), nn.GroupNorm(groups, cout))
        else:
            self.skip = nn.Identity()

    def forward(self, x, emb):
        te = self.time_mlp(emb)
        a = F.silu(self.norm1(self.conv1(x))) + te[:, :, None, None, None]
        b = self.norm2(self.conv2(a))
        return F.silu(b + self.skip(x))


class LatentVelocityEstimator(nn.Module):
    def __init__(self, in_channels=128, base_channels=64, time_dim=128, num_res_blocks=4):
        super().__init__()
        self.time_embed = TimeEmbedding(time_dim)
        self.input_conv = nn.Conv3d(in_channels, base_channels, 3, 1, 1)
        self.input_norm = nn.GroupNorm(8, base_channels)
        self.res_blocks = nn.ModuleList(
            [ResBlock(base_channels, base_channels, time_dim) for _ in range(num_res_blocks)])
        self.output_norm = nn.GroupNorm(8, base_channels)
        self.output_conv = nn.Conv3d(base_channels, in_channels, 3, 1, 1)

    def forward(self, z, t):
        emb = self.time_embed(t)
        h = F.silu(self.input_norm(self.input_conv(z)))
        for blk in self.res_blocks:
            h = blk(h, emb)
        return self.output_conv(F.silu(self.output_norm(h)))


class Tiny3DAE(nn.Module):
    def __init__(self, base=16):
        super().__init__()
        b = base
        self.enc = nn.Sequential(
            nn.Conv3d(1, b, 3, 1, 1), nn.ReLU(),
            nn.Conv3d(b, 2 * b, 4, 2, 1), nn.ReLU(),
            nn.Conv3d(2 * b, 4 * b, 4, 2, 1), nn.ReLU(),
            nn.Conv3d(4 * b, 8 * b, 4, 2, 1), nn.ReLU())
        self.dec = nn.Sequential(
            nn.ConvTranspose3d(8 * b, 4 * b, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose3d(4 * b, 2 * b, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose3d(2 * b, b, 4, 2, 1), nn.ReLU(),
            nn.Conv3d(b, 1, 3, 1, 1), nn.Tanh())

    def forward(self, x):
        return self.dec(self.enc(x))


class NoiseSchedule:
    def __init__(self, timesteps=1000, schedule_type="cosine"):
        self.timesteps = timesteps
        self.schedule_type = schedule_type
        if schedule_type == "linear":
            self.betas = torch.linspace(1e-4, 0.02, timesteps)
        elif schedule_type == "cosine":
            s = 0.008
            x = torch.linspace(0, timesteps, timesteps + 1)
            ac = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
            ac = ac / ac[0]
            self.betas = torch.clip(1 - (ac[1:] / ac[:-1]), 0.0001, 0.9999)
        else:
            raise ValueError(schedule_type)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)


@torch.no_grad()
def score_round_trip(model, z, n_steps=50):
    dt = 1.0 / n_steps
    x = z.clone()
    B = z.shape[0]
    for i in range(n_steps):
        t = torch.full((B,), i * dt)
        x = x + dt * model(x, t)
    for i in range(n_steps):
        t = torch.full((B,), 1.0 - i * dt)
        x = x - dt * model(x, t)
    return ((z - x) ** 2).flatten(1).mean(1)


@torch.no_grad()
def score_mse_multi_t(model, z, n_samples=10, t_min=0.0, t_max=1.0, gen=None):
    B = z.shape[0]
    total = torch.zeros(B)
    for _ in range(n_samples):
        t = torch.rand(B, generator=gen) * (t_max - t_min) + t_min
        z1 = torch.randn(z.shape, generator=gen)
        tt = t[:, None, None, None, None]
        zt = (1 - tt) * z + tt * z1
        v = model(zt, t)
        total += ((v - (z1 - z)) ** 2).flatten(1).mean(1)
    return total / n_samples


@torch.no_grad()
def score_ddpm(model, z, sched, n_samples=10, t_max=None, gen=None):
    B = z.shape[0]
    T = sched.timesteps if t_max is None else min(t_max, sched.timesteps)
    total = torch.zeros(B)
    for _ in range(n_samples):
        t = torch.randint(0, T, (B,), generator=gen)
        eps = torch.randn(z.shape, generator=gen)
        ab = sched.alphas_cumprod[t][:, None, None, None, None]
        zt = ab.sqrt() * z + (1 - ab).sqrt() * eps
        pred = model(zt, t.float() / sched.timesteps)
        total += ((pred - eps) ** 2).flatten(1).mean(1)
    return total / n_samples
