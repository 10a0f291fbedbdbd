// Test kernels for the MSL emulator: plain (non-blocking) kernels, built-in bindings, a
// deliberate missing-barrier race and a deliberate out-of-bounds write.
#include <metal_stdlib>
using namespace metal;

struct AxpyArgs {
    uint n;
    float a;
};

kernel void axpy(constant AxpyArgs& g [[buffer(0)]],
                 device const float* x [[buffer(1)]],
                 device float* y [[buffer(2)]],
                 uint i [[thread_position_in_grid]]) {
    if (i < g.n) {
        y[i] = fma(g.a, x[i], y[i]);
    }
}

// builtins records every thread attribute of every thread: 22 words per thread at its
// linear position in the grid.
struct GridArgs {
    uint stride; // threads per grid along x (for the linear index)
    uint rows;   // threads per grid along y
};

kernel void builtins(constant GridArgs& g [[buffer(0)]],
                     device uint* out [[buffer(1)]],
                     uint3 tpig [[thread_position_in_grid]],
                     ushort2 tptg [[thread_position_in_threadgroup]],
                     uint3 tgpig [[threadgroup_position_in_grid]],
                     uint3 ttpg [[threads_per_threadgroup]],
                     uint3 tgpg [[threadgroups_per_grid]],
                     uint3 tpg [[threads_per_grid]],
                     uint tiitg [[thread_index_in_threadgroup]],
                     uint tiisg [[thread_index_in_simdgroup]],
                     ushort sgitg [[simdgroup_index_in_threadgroup]],
                     uint tpsg [[threads_per_simdgroup]]) {
    uint lin = (tpig.z * g.rows + tpig.y) * g.stride + tpig.x;
    device uint* o = out + lin * 22;
    o[0] = tpig.x; o[1] = tpig.y; o[2] = tpig.z;
    o[3] = tptg.x; o[4] = tptg.y;
    o[5] = tgpig.x; o[6] = tgpig.y; o[7] = tgpig.z;
    o[8] = ttpg.x; o[9] = ttpg.y; o[10] = ttpg.z;
    o[11] = tgpg.x; o[12] = tgpg.y; o[13] = tgpg.z;
    o[14] = tpg.x; o[15] = tpg.y; o[16] = tpg.z;
    o[17] = tiitg; o[18] = tiisg; o[19] = sgitg; o[20] = tpsg;
    uint2 sw = tpig.yx;
    o[21] = sw.x * 1000u + sw.y;
}

struct ShiftArgs {
    uint n;
};

#define SHIFT_T 64

// shift_race: out[i] = in[i-1] within each threadgroup, but without the barrier between the
// write and the read of the neighbour's slot. It passes by luck when threads run in order.
kernel void shift_race(constant ShiftArgs& g [[buffer(0)]],
                       device const float* in [[buffer(1)]],
                       device float* out [[buffer(2)]],
                       uint gid [[thread_position_in_grid]],
                       uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float tile[SHIFT_T];
    tile[tid] = gid < g.n ? in[gid] : 0.0f;
    if (gid < g.n) {
        out[gid] = tid > 0 ? tile[tid - 1] : -1.0f;
    }
}

// shift_ok is shift_race with the barrier.
[[max_total_threads_per_threadgroup(64)]]
kernel void shift_ok(constant ShiftArgs& g [[buffer(0)]],
                     device const float* in [[buffer(1)]],
                     device float* out [[buffer(2)]],
                     uint gid [[thread_position_in_grid]],
                     uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float tile[SHIFT_T];
    tile[tid] = gid < g.n ? in[gid] : 0.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (gid < g.n) {
        out[gid] = tid > 0 ? tile[tid - 1] : -1.0f;
    }
}

// oob_write forgets the bounds check: threads past n write past the end of out.
kernel void oob_write(constant ShiftArgs& g [[buffer(0)]],
                      device float* out [[buffer(1)]],
                      uint gid [[thread_position_in_grid]]) {
    out[gid] = float(gid) + 0.5f * float(g.n);
}

// vec_math exercises vector types, swizzles and math in a plain kernel.
kernel void vec_math(constant ShiftArgs& g [[buffer(0)]],
                     device const float4* in [[buffer(1)]],
                     device float4* out [[buffer(2)]],
                     uint i [[thread_position_in_grid]]) {
    if (i >= g.n) {
        return;
    }
    float4 v = in[i];
    float3 w = v.zyx * 2.0f + float3(v.w);
    float2 m = max(v.xy, v.zw);
    out[i] = float4(w, dot(m, m)) + precise::exp(float4(0.0f)) - clamp(v, -1.0f, 1.0f);
}

// atomics: every thread adds to device counters shared by all groups (which run on several
// OS threads) and to a threadgroup counter that its group then publishes.
kernel void atomics(constant ShiftArgs& g [[buffer(0)]],
                    device atomic_uint* count [[buffer(1)]],
                    device atomic_float* sum [[buffer(2)]],
                    device uint* per_group [[buffer(3)]],
                    uint gid [[thread_position_in_grid]],
                    uint group [[threadgroup_position_in_grid]],
                    uint tid [[thread_index_in_threadgroup]]) {
    threadgroup atomic_uint local;
    if (tid == 0) {
        atomic_store_explicit(&local, 0u, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (gid < g.n) {
        atomic_fetch_add_explicit(count, 1u, memory_order_relaxed);
        atomic_fetch_add_explicit(sum, 0.25f, memory_order_relaxed);
        atomic_fetch_add_explicit(&local, 1u, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        per_group[group] = atomic_load_explicit(&local, memory_order_relaxed);
    }
}

// qualified spells everything with metal:: as some kernels do.
kernel void qualified(device metal::float2* y [[buffer(1)]],
                      metal::uint i [[thread_position_in_grid]]) {
    metal::float2 v = y[i];
    metal::threadgroup_barrier(metal::mem_flags::mem_none);
    y[i] = metal::float2(metal::max(v.x, v.y), metal::precise::sqrt(metal::abs(v.y)));
}
