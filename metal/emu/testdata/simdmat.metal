// simdgroup_matrix for the MSL emulator's tests: each simdgroup computes one 8×8 tile of
// C[M×N] = A[M×K]·B[K×N] (all multiples of 8), row-major, straight from device memory; B is
// given transposed (Bt[N×K]) when args.bt is set.
#include <metal_stdlib>
using namespace metal;

struct MatArgs {
    uint m;
    uint n;
    uint k;
    uint bt;
};

kernel void simd_matmul(constant MatArgs& g [[buffer(0)]],
                        device const float* A [[buffer(1)]],
                        device const float* B [[buffer(2)]],
                        device float* C [[buffer(3)]],
                        uint2 group [[threadgroup_position_in_grid]],
                        uint sg [[simdgroup_index_in_threadgroup]]) {
    // Threadgroups of 2 simdgroups, side by side along N.
    uint row = group.y * 8;
    uint col = (group.x * 2 + sg) * 8;
    if (row >= g.m || col >= g.n) {
        return;
    }
    simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    for (uint k0 = 0; k0 < g.k; k0 += 8) {
        simdgroup_float8x8 a;
        simdgroup_float8x8 b;
        simdgroup_load(a, A, g.k, ulong2(k0, row));
        if (g.bt != 0) {
            simdgroup_load(b, B, g.k, ulong2(k0, col), true);
        } else {
            simdgroup_load(b, B, g.n, ulong2(col, k0));
        }
        simdgroup_multiply_accumulate(acc, a, b, acc);
    }
    simdgroup_store(acc, C + row * g.n + col, g.n);
}
