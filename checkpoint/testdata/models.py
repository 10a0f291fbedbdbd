"""Minimal PyTorch twins of latentad's two networks, enough to produce the seed's state_dict
keys and shapes (SPEC.md sections 1.4 and 2). Shared by gen_fixtures.py and the interop test
(checkpoint_interop_test.go), which load_state_dict(strict=True) into them."""
import math

import torch
import torch.nn as nn


class TimeMLP(nn.Module):
    def __init__(self, time_dim, ch):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(time_dim, ch), nn.SiLU(), nn.Linear(ch, ch))

    def forward(self, emb):
        return self.mlp(emb)


class ResBlock(nn.Module):
    def __init__(self, ch, time_dim):
        super().__init__()
        self.time_mlp = TimeMLP(time_dim, ch)
        self.conv1 = nn.Conv3d(ch, ch, 3, 1, 1)
        self.norm1 = nn.GroupNorm(8, ch)
        self.conv2 = nn.Conv3d(ch, ch, 3, 1, 1)
        self.norm2 = nn.GroupNorm(8, ch)

    def forward(self, x, emb):
        te = self.time_mlp(emb)[:, :, None, None, None]
        a = nn.functional.silu(self.norm1(self.conv1(x))) + te
        return nn.functional.silu(self.norm2(self.conv2(a)) + x)


class LatentVelocityEstimator(nn.Module):
    def __init__(self, in_channels=128, base_channels=64, time_dim=128, num_res_blocks=4):
        super().__init__()
        self.time_dim = time_dim
        self.input_conv = nn.Conv3d(in_channels, base_channels, 3, 1, 1)
        self.input_norm = nn.GroupNorm(8, base_channels)
        self.res_blocks = nn.ModuleList([ResBlock(base_channels, time_dim) for _ in range(num_res_blocks)])
        self.output_norm = nn.GroupNorm(8, base_channels)
        self.output_conv = nn.Conv3d(base_channels, in_channels, 3, 1, 1)

    def forward(self, z, t):
        half = self.time_dim // 2
        f = torch.exp(-torch.arange(half, dtype=torch.float32) * math.log(10000.0) / (half - 1))
        arg = t[:, None] * f[None, :]
        emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)
        h = nn.functional.silu(self.input_norm(self.input_conv(z)))
        for blk in self.res_blocks:
            h = blk(h, emb)
        return self.output_conv(nn.functional.silu(self.output_norm(h)))


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
