#!/usr/bin/python3
"""PyTorch peer for fallback/kern's benchmarks: best-of-N GFLOP/s of conv3d forward, input
gradient and weight gradient at the shapes of bench_test.go, on 1 and 2 threads.

Run: /usr/bin/python3 fallback/kern/testdata/bench_torch.py [repeats]
(Debian's python3-torch; GFLOP/s counts 2·N·Co·P·Ci·K³ like the Go benchmarks.)
"""
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [
    # name, N, Ci, Co, (D,H,W) input, kernel, stride, pad, directions
    ("vel_64to64_b4", 4, 64, 64, (8, 16, 16), 3, 1, 1, "fdw"),
    ("vel_128to64_b4", 4, 128, 64, (8, 16, 16), 3, 1, 1, "fdw"),
    ("vel_64to128_b4", 4, 64, 128, (8, 16, 16), 3, 1, 1, "fdw"),
    ("ae_1to16_k3", 1, 1, 16, (64, 128, 128), 3, 1, 1, "f"),
    ("ae_16to32_k4s2", 1, 16, 32, (64, 128, 128), 4, 2, 1, "f"),
    ("ae_32to64_k4s2", 1, 32, 64, (32, 64, 64), 4, 2, 1, "f"),
    ("ae_64to128_k4s2", 1, 64, 128, (16, 32, 32), 4, 2, 1, "f"),
]


def best_of(fn, repeats, min_time=0.3):
    """Best wall time per call over repeats, and the best process CPU time per call (all
    threads): on a shared machine FLOPs per CPU-second measure the library, wall time
    mostly the neighbours."""
    fn()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time / repeats or n >= 50:
                break
        best = min(best, el / n)
        best_cpu = min(best_cpu, (time.process_time() - c0) / n)
    return best, best_cpu


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.manual_seed(0)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, n, ci, co, ins, k, s, p, dirs in SHAPES:
            x = torch.randn(n, ci, *ins)
            w = torch.randn(co, ci, k, k, k)
            b = torch.randn(co)
            y = F.conv3d(x, w, b, stride=s, padding=p)
            gy = torch.randn_like(y)
            flops = 2 * n * co * y[0, 0].numel() * ci * k ** 3
            for d in dirs:
                if d == "f":
                    label, fn = "forward", lambda: F.conv3d(x, w, b, stride=s, padding=p)
                elif d == "d":
                    label, fn = "data", lambda: torch.ops.aten.convolution_backward(
                        gy, x, w, [co], [s] * 3, [p] * 3, [1] * 3, False, [0] * 3, 1,
                        [True, False, False])
                else:
                    label, fn = "weight", lambda: torch.ops.aten.convolution_backward(
                        gy, x, w, [co], [s] * 3, [p] * 3, [1] * 3, False, [0] * 3, 1,
                        [False, True, True])
                with torch.no_grad():
                    t, cpu = best_of(fn, repeats)
                print(f"torch threads={threads} {name}/{label}: {t*1e3:.2f} ms {flops/t/1e9:.1f} GFLOP/s "
                      f"{flops/cpu/1e9:.1f} GFLOP/cpu-s", flush=True)


if __name__ == "__main__":
    main()
