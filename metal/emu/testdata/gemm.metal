// A classic tiled GEMM for the MSL emulator's tests: C[M×N] = A[M×K]·B[K×N], row-major, one
// thread per element of C, 16×16 tiles of A and B in threadgroup memory between barriers.
#include <metal_stdlib>
using namespace metal;

#define TG_TILE 16

struct TGemmArgs {
    uint m;
    uint n;
    uint k;
};

kernel void tgemm(constant TGemmArgs& g [[buffer(0)]],
                  device const float* A [[buffer(1)]],
                  device const float* B [[buffer(2)]],
                  device float* C [[buffer(3)]],
                  uint2 group [[threadgroup_position_in_grid]],
                  uint2 t [[thread_position_in_threadgroup]]) {
    threadgroup float as[TG_TILE][TG_TILE];
    threadgroup float bs[TG_TILE][TG_TILE];
    uint row = group.y * TG_TILE + t.y;
    uint col = group.x * TG_TILE + t.x;
    float acc = 0.0f;
    for (uint k0 = 0; k0 < g.k; k0 += TG_TILE) {
        as[t.y][t.x] = (row < g.m && k0 + t.x < g.k) ? A[row * g.k + k0 + t.x] : 0.0f;
        bs[t.y][t.x] = (col < g.n && k0 + t.y < g.k) ? B[(k0 + t.y) * g.n + col] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint kk = 0; kk < TG_TILE; kk++) {
            acc = fma(as[t.y][kk], bs[kk][t.x], acc);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (row < g.m && col < g.n) {
        C[row * g.n + col] = acc;
    }
}

// barriers only: measures the cost of a barrier per thread (BenchmarkBarrier).
kernel void barriers(constant TGemmArgs& g [[buffer(0)]],
                     device float* out [[buffer(1)]],
                     uint tid [[thread_index_in_threadgroup]]) {
    float acc = float(tid);
    for (uint i = 0; i < g.k; i++) {
        threadgroup_barrier(mem_flags::mem_threadgroup);
        acc += 1.0f;
    }
    if (tid == 0) {
        out[0] = acc;
    }
}
