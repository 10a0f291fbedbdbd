// Reductions: per-channel and per-(sample, channel) sums, per-sample means, the mean over
// channels.
//
// Sums over many elements run one threadgroup of RED_THREADS threads per output: each
// thread adds a strided slice, then a tree in threadgroup memory adds the partial sums.
// The order is fixed, so results are deterministic run to run.

#include <metal_stdlib>
using namespace metal;

#define RED_THREADS 256

// red_tree_sum returns the sum of v over the threadgroup to every thread.
// Every thread of the group must call it.
inline float red_tree_sum(threadgroup float* buf, uint tid, float v) {
    buf[tid] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint step = RED_THREADS / 2; step > 0; step >>= 1) {
        if (tid < step) {
            buf[tid] += buf[tid + step];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    float total = buf[0];
    // A second call must not overwrite buf[0] before every thread has read it.
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return total;
}

struct SumChannelsArgs {
    uint batch;
    uint channels;
    uint spatial;
};

// sum_channels: out[c] = Σ_{n,s} x[n,c,s]; one threadgroup per channel c.
kernel void sum_channels(constant SumChannelsArgs& a [[buffer(0)]],
                         device const float* x [[buffer(1)]],
                         device float* out [[buffer(2)]],
                         uint c [[threadgroup_position_in_grid]],
                         uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float buf[RED_THREADS];
    float acc = 0.0f;
    for (uint n = 0; n < a.batch; n++) {
        device const float* row = x + (n * a.channels + c) * a.spatial;
        for (uint s = tid; s < a.spatial; s += RED_THREADS) {
            acc += row[s];
        }
    }
    float total = red_tree_sum(buf, tid, acc);
    if (tid == 0) {
        out[c] = total;
    }
}

struct RowSumArgs {
    uint len;   // elements per row
    float scale; // multiplies the sum: 1 for a sum, 1/len for a mean
};

// row_sum: out[r] = scale·Σ_j x[r·len + j]; one threadgroup per row. SumSpatial uses it with
// rows (n, c), MeanSample with rows n.
kernel void row_sum(constant RowSumArgs& a [[buffer(0)]],
                    device const float* x [[buffer(1)]],
                    device float* out [[buffer(2)]],
                    uint r [[threadgroup_position_in_grid]],
                    uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float buf[RED_THREADS];
    device const float* row = x + r * a.len;
    float acc = 0.0f;
    for (uint j = tid; j < a.len; j += RED_THREADS) {
        acc += row[j];
    }
    float total = red_tree_sum(buf, tid, acc);
    if (tid == 0) {
        out[r] = total * a.scale;
    }
}

struct MeanChannelsArgs {
    uint n; // batch·spatial outputs
    uint channels;
    uint spatial;
};

// mean_channels: out[n,s] = mean_c x[n,c,s]; one thread per output.
kernel void mean_channels(constant MeanChannelsArgs& a [[buffer(0)]],
                          device const float* x [[buffer(1)]],
                          device float* out [[buffer(2)]],
                          uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        uint b = i / a.spatial;
        uint s = i - b * a.spatial;
        device const float* p = x + b * a.channels * a.spatial + s;
        float acc = 0.0f;
        for (uint c = 0; c < a.channels; c++) {
            acc += p[c * a.spatial];
        }
        out[i] = acc / float(a.channels);
    }
}
