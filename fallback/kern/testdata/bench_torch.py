#!/usr/bin/python3
"""PyTorch peer for fallback/kern's benchmarks: best-of-N GFLOP/s of conv3d forward, input
gradient and weight gradient at the shapes of bench_test.go, on 1 and 2 threads.

Run: /usr/bin/python3 fallback/kern/testdata/bench_torch.py [repeats] [kern.test]
(Debian's python3-torch; GFLOP/s counts 2·N·Co·P·Ci·K³ like the Go benchmarks, also for
kern's Winograd path, which does fewer multiplications: the figures compare time.)

With a Go test binary (`go test -c -o /tmp/kern.test ./fallback/kern`) as second argument,
each torch measurement is followed by the same Go benchmark (GOMAXPROCS = threads), and
a table of best-of-repeats for both is printed: on a shared machine whose clock and
load drift by ±30% within minutes, only interleaved measurements compare fairly.
"""
import os
import re
import subprocess
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
    ("ae_16to32_k4s2", 1, 16, 32, (64, 128, 128), 4, 2, 1, "fdw"),
    ("ae_32to64_k4s2", 1, 32, 64, (32, 64, 64), 4, 2, 1, "fdw"),
    ("ae_64to128_k4s2", 1, 64, 128, (16, 32, 32), 4, 2, 1, "fdw"),
]


def best_of(fn, repeats, min_time=1.0):
    """Best over repeats of the mean wall time per call in a run of about min_time
    seconds (like one `go test -bench` run; use -count N there for best of N), and the
    best mean process CPU time per call (all threads): on a shared machine FLOPs per
    CPU-second measure the library, wall time mostly the neighbours."""
    fn()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        best = min(best, el / n)
        best_cpu = min(best_cpu, (time.process_time() - c0) / n)
    return best, best_cpu


def go_bench(binary, name, threads):
    """GFLOP/s (wall) of one Go benchmark run of about a second."""
    env = dict(os.environ, GOMAXPROCS=str(threads))
    pattern = "/".join(f"^{part}$" for part in name.split("/"))
    out = subprocess.run([binary, "-test.run=XXX", f"-test.bench=^BenchmarkConv3d$/{pattern}",
                          "-test.benchtime=1s", f"-test.cpu={threads}"],
                         capture_output=True, text=True, env=env,
                         cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    m = re.search(r"([\d.]+) GFLOP/s", out.stdout)
    if not m:
        sys.exit(f"go benchmark {name} failed:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1))


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    go_binary = sys.argv[2] if len(sys.argv) > 2 else None
    rows = []
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
                if go_binary:
                    # 3×3×3 stride-1 convolutions run as Winograd in kern (the production
                    # path); the direct GEMM is measured beside it.
                    wino = k == 3 and s == 1 and p == 1
                    best_t, best_g, best_d = 0.0, 0.0, 0.0
                    for _ in range(repeats):
                        with torch.no_grad():
                            t, _ = best_of(fn, 1)
                        best_t = max(best_t, flops / t / 1e9)
                        if wino:
                            best_g = max(best_g, go_bench(go_binary, f"{name}/{label}/winograd", threads))
                            best_d = max(best_d, go_bench(go_binary, f"{name}/{label}/direct", threads))
                        else:
                            best_g = max(best_g, go_bench(go_binary, f"{name}/{label}", threads))
                    rows.append((threads, f"{name}/{label}", best_t, best_g, best_d))
                    print(f"threads={threads} {name}/{label}: torch {best_t:.1f} GFLOP/s, go {best_g:.1f} GFLOP/s"
                          + (f" (direct {best_d:.1f})" if wino else ""), flush=True)
                    continue
                with torch.no_grad():
                    t, cpu = best_of(fn, repeats)
                print(f"torch threads={threads} {name}/{label}: {t*1e3:.2f} ms {flops/t/1e9:.1f} GFLOP/s "
                      f"{flops/cpu/1e9:.1f} GFLOP/cpu-s", flush=True)
    if rows:
        print("\n| threads | conv / direction | torch | kern | kern / torch | kern direct GEMM |")
        print("|---|---|---|---|---|---|")
        for threads, name, t, g, d in rows:
            print(f"| {threads} | {name} | {t:.0f} | {g:.0f} | {g / t:.2f} | {f'{d:.0f}' if d else ''} |")


if __name__ == "__main__":
    main()
