// Reductions and simd-group functions for the MSL emulator's tests.
#include <metal_stdlib>
using namespace metal;

struct RedArgs {
    uint n;
    uint delta;
};

#define RED_T 256

// simd_reduce: per threadgroup of RED_T threads, simd_sum within each simdgroup, partial sums
// through threadgroup memory, then simd_sum of the partials by the first simdgroup.
kernel void simd_reduce(constant RedArgs& g [[buffer(0)]],
                        device const float* in [[buffer(1)]],
                        device float* out [[buffer(2)]],
                        uint gid [[thread_position_in_grid]],
                        uint group [[threadgroup_position_in_grid]],
                        uint tid [[thread_index_in_threadgroup]],
                        uint lane [[thread_index_in_simdgroup]],
                        uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float part[RED_T / 32];
    float v = gid < g.n ? in[gid] : 0.0f;
    v = simd_sum(v);
    if (lane == 0) {
        part[sg] = v;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        float p = lane < RED_T / 32 ? part[lane] : 0.0f;
        p = simd_sum(p);
        if (tid == 0) {
            out[group] = p;
        }
    }
}

// tree_reduce: the textbook shared-memory tree, one barrier per level.
kernel void tree_reduce(constant RedArgs& g [[buffer(0)]],
                        device const float* in [[buffer(1)]],
                        device float* out [[buffer(2)]],
                        uint gid [[thread_position_in_grid]],
                        uint group [[threadgroup_position_in_grid]],
                        uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float s[RED_T];
    s[tid] = gid < g.n ? in[gid] : 0.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint h = RED_T / 2; h > 0; h >>= 1) {
        if (tid < h) {
            s[tid] += s[tid + h];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (tid == 0) {
        out[group] = s[0];
    }
}

// shuffles: for each thread, four words: simd_shuffle_down by delta, simd_shuffle_xor by
// delta, the exclusive prefix sum, and the simdgroup maximum broadcast from lane 0.
kernel void shuffles(constant RedArgs& g [[buffer(0)]],
                     device const float* in [[buffer(1)]],
                     device float* out [[buffer(2)]],
                     uint gid [[thread_position_in_grid]]) {
    float v = in[gid];
    float down = simd_shuffle_down(v, (ushort)g.delta);
    float x = simd_shuffle_xor(v, (ushort)g.delta);
    float pre = simd_prefix_exclusive_sum(v);
    float mx = simd_broadcast(simd_max(v), (ushort)0);
    out[gid * 4 + 0] = down;
    out[gid * 4 + 1] = x;
    out[gid * 4 + 2] = pre;
    out[gid * 4 + 3] = mx;
}

// shuffle_reduce sums each simdgroup with the shuffle-down ladder.
kernel void shuffle_reduce(device const float* in [[buffer(1)]],
                           device float* out [[buffer(2)]],
                           uint gid [[thread_position_in_grid]],
                           uint lane [[thread_index_in_simdgroup]]) {
    float v = in[gid];
    for (ushort off = 16; off > 0; off >>= 1) {
        v += simd_shuffle_down(v, off);
    }
    if (lane == 0) {
        out[gid / 32] = v;
    }
}

// partial_sum: only lanes below delta call simd_sum, so only they take part (as under
// divergence on the GPU); the other lanes keep their value.
kernel void partial_sum(constant RedArgs& g [[buffer(0)]],
                        device const float* in [[buffer(1)]],
                        device float* out [[buffer(2)]],
                        uint gid [[thread_position_in_grid]],
                        uint lane [[thread_index_in_simdgroup]]) {
    float v = in[gid];
    if (lane < g.delta) {
        v = simd_sum(v);
    }
    out[gid] = v;
}

// split_simd: the two halves of each simdgroup call different simd-group functions; each call
// combines only its own half (lanes on the other path do not take part).
kernel void split_simd(device const float* in [[buffer(1)]],
                       device float* out [[buffer(2)]],
                       uint gid [[thread_position_in_grid]],
                       uint lane [[thread_index_in_simdgroup]]) {
    float v = in[gid];
    if (lane < 16) {
        v = simd_sum(v);
    } else {
        v = simd_max(v);
    }
    out[gid] = v;
}
