// A small tiled GEMM for the Linear layers: C = alpha·op(A)·op(B) + beta·C, op(X) = Xᵀ
// when its transpose flag is set. Row-major 2-D tensors; one thread per element of C,
// GEMM_TILE×GEMM_TILE threads per threadgroup sharing tiles of op(A) and op(B) in
// threadgroup memory.

#include <metal_stdlib>
using namespace metal;

#define GEMM_TILE 16

struct GemmArgs {
    uint m;
    uint n;
    uint k;
    uint lda; // row length of A as stored
    uint ldb; // row length of B as stored
    uint trans_a;
    uint trans_b;
    float alpha;
    float beta;
};

// gemm_tiled: threadgroup (bx, by) computes C[by·T…, bx·T…].
kernel void gemm_tiled(constant GemmArgs& a [[buffer(0)]],
                       device const float* A [[buffer(1)]],
                       device const float* B [[buffer(2)]],
                       device float* C [[buffer(3)]],
                       uint2 group [[threadgroup_position_in_grid]],
                       uint2 t [[thread_position_in_threadgroup]]) {
    threadgroup float as[GEMM_TILE][GEMM_TILE + 1];
    threadgroup float bs[GEMM_TILE][GEMM_TILE + 1];
    uint row = group.y * GEMM_TILE + t.y;
    uint col = group.x * GEMM_TILE + t.x;
    float acc = 0.0f;
    for (uint k0 = 0; k0 < a.k; k0 += GEMM_TILE) {
        // as[t.y][t.x] = op(A)[row][k0 + t.x]; bs[t.y][t.x] = op(B)[k0 + t.y][col].
        uint ka = k0 + t.x;
        float va = 0.0f;
        if (row < a.m && ka < a.k) {
            va = a.trans_a != 0 ? A[ka * a.lda + row] : A[row * a.lda + ka];
        }
        as[t.y][t.x] = va;
        uint kb = k0 + t.y;
        float vb = 0.0f;
        if (col < a.n && kb < a.k) {
            vb = a.trans_b != 0 ? B[col * a.ldb + kb] : B[kb * a.ldb + col];
        }
        bs[t.y][t.x] = vb;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint kk = 0; kk < GEMM_TILE; kk++) {
            acc += as[t.y][kk] * bs[kk][t.x];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (row < a.m && col < a.n) {
        uint i = row * a.n + col;
        // beta = 0 ignores C, as BLAS does, so NaN in an unset C does not leak through.
        float prev = a.beta != 0.0f ? a.beta * C[i] : 0.0f;
        C[i] = a.alpha * acc + prev;
    }
}
