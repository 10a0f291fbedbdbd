// GroupNorm forward (alone, or fused with SiLU and a per-sample bias) and backward
// (PyTorch's nn.GroupNorm: biased variance, per-channel affine). A group's channels are contiguous in NCDHW, so group (n, g) is one run of
// (C/G)·S elements, reduced by one threadgroup of GN_THREADS threads.
//
// Statistics are two-pass (mean, then the mean of squared deviations), which stays accurate
// when |mean| ≫ std, unlike E[x²] - E[x]².

#include <metal_stdlib>
using namespace metal;

#define GN_THREADS 256

// gn_tree_sum returns the sum of v over the threadgroup to every thread; every thread of
// the group must call it.
inline float gn_tree_sum(threadgroup float* buf, uint tid, float v) {
    buf[tid] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint step = GN_THREADS / 2; step > 0; step >>= 1) {
        if (tid < step) {
            buf[tid] += buf[tid + step];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    float total = buf[0];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return total;
}

struct GroupNormArgs {
    uint channels;
    uint spatial;
    uint groups;
    float eps;
};

// group_norm_forward: one threadgroup per (n, g) = threadgroup index n·G + g.
kernel void group_norm_forward(constant GroupNormArgs& a [[buffer(0)]],
                               device const float* x [[buffer(1)]],
                               device const float* gamma [[buffer(2)]],
                               device const float* beta [[buffer(3)]],
                               device float* y [[buffer(4)]],
                               device float* mean [[buffer(5)]],
                               device float* rstd [[buffer(6)]],
                               uint ng [[threadgroup_position_in_grid]],
                               uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float buf[GN_THREADS];
    uint cpg = a.channels / a.groups;
    uint len = cpg * a.spatial;
    uint g = ng % a.groups;
    device const float* xs = x + ng * len;
    device float* ys = y + ng * len;

    float acc = 0.0f;
    for (uint j = tid; j < len; j += GN_THREADS) {
        acc += xs[j];
    }
    float mu = gn_tree_sum(buf, tid, acc) / float(len);

    acc = 0.0f;
    for (uint j = tid; j < len; j += GN_THREADS) {
        float d = xs[j] - mu;
        acc += d * d;
    }
    float var = gn_tree_sum(buf, tid, acc) / float(len);
    float r = 1.0f / precise::sqrt(var + a.eps);
    if (tid == 0) {
        mean[ng] = mu;
        rstd[ng] = r;
    }

    for (uint cc = 0; cc < cpg; cc++) {
        uint c = g * cpg + cc;
        float scale = r * gamma[c];
        float shift = beta[c] - mu * scale;
        device const float* xr = xs + cc * a.spatial;
        device float* yr = ys + cc * a.spatial;
        for (uint s = tid; s < a.spatial; s += GN_THREADS) {
            yr[s] = xr[s] * scale + shift;
        }
    }
}

struct GroupNormSiluArgs {
    uint channels;
    uint spatial;
    uint groups;
    float eps;
    uint has_pre;  // write pre = GroupNorm(x)
    uint has_bias; // add bias[n, c]
};

// gn_sigmoid is activation.metal's σ (files compile alone, so it is repeated here).
inline float gn_sigmoid(float x) {
    return 1.0f / (1.0f + precise::exp(-x));
}

// group_norm_silu: group_norm_forward's statistics, then y = SiLU(p) + bias[n, c] with
// p = GroupNorm(x), kept in pre when has_pre; one pass over x instead of three ops. One
// threadgroup per (n, g) = threadgroup index n·G + g. Unused pre and bias are bound to a
// dummy buffer and never touched.
kernel void group_norm_silu(constant GroupNormSiluArgs& a [[buffer(0)]],
                            device const float* x [[buffer(1)]],
                            device const float* gamma [[buffer(2)]],
                            device const float* beta [[buffer(3)]],
                            device const float* bias [[buffer(4)]],
                            device float* pre [[buffer(5)]],
                            device float* y [[buffer(6)]],
                            device float* mean [[buffer(7)]],
                            device float* rstd [[buffer(8)]],
                            uint ng [[threadgroup_position_in_grid]],
                            uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float buf[GN_THREADS];
    uint cpg = a.channels / a.groups;
    uint len = cpg * a.spatial;
    uint g = ng % a.groups;
    uint n = ng / a.groups;
    device const float* xs = x + ng * len;

    float acc = 0.0f;
    for (uint j = tid; j < len; j += GN_THREADS) {
        acc += xs[j];
    }
    float mu = gn_tree_sum(buf, tid, acc) / float(len);

    acc = 0.0f;
    for (uint j = tid; j < len; j += GN_THREADS) {
        float d = xs[j] - mu;
        acc += d * d;
    }
    float var = gn_tree_sum(buf, tid, acc) / float(len);
    float r = 1.0f / precise::sqrt(var + a.eps);
    if (tid == 0) {
        mean[ng] = mu;
        rstd[ng] = r;
    }

    for (uint cc = 0; cc < cpg; cc++) {
        uint c = g * cpg + cc;
        float scale = r * gamma[c];
        float shift = beta[c] - mu * scale;
        float b = a.has_bias != 0 ? bias[n * a.channels + c] : 0.0f;
        uint base = ng * len + cc * a.spatial;
        for (uint s = tid; s < a.spatial; s += GN_THREADS) {
            float p = x[base + s] * scale + shift;
            if (a.has_pre != 0) {
                pre[base + s] = p;
            }
            float v = p * gn_sigmoid(p);
            y[base + s] = a.has_bias != 0 ? v + b : v;
        }
    }
}

// group_norm_backward_data: dx for one (n, g) per threadgroup:
// dx = rstd·(dy·γ - mean(dy·γ) - x̂·mean(dy·γ·x̂)), x̂ = (x - mean)·rstd.
kernel void group_norm_backward_data(constant GroupNormArgs& a [[buffer(0)]],
                                     device const float* x [[buffer(1)]],
                                     device const float* dy [[buffer(2)]],
                                     device const float* gamma [[buffer(3)]],
                                     device const float* mean [[buffer(4)]],
                                     device const float* rstd [[buffer(5)]],
                                     device float* dx [[buffer(6)]],
                                     uint ng [[threadgroup_position_in_grid]],
                                     uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float buf[GN_THREADS];
    uint cpg = a.channels / a.groups;
    uint len = cpg * a.spatial;
    uint g = ng % a.groups;
    float mu = mean[ng];
    float r = rstd[ng];
    device const float* xs = x + ng * len;
    device const float* dys = dy + ng * len;
    device float* dxs = dx + ng * len;

    float s1 = 0.0f; // Σ dy·γ
    float s2 = 0.0f; // Σ dy·γ·x̂
    for (uint cc = 0; cc < cpg; cc++) {
        float gm = gamma[g * cpg + cc];
        device const float* xr = xs + cc * a.spatial;
        device const float* dyr = dys + cc * a.spatial;
        for (uint s = tid; s < a.spatial; s += GN_THREADS) {
            float dg = dyr[s] * gm;
            s1 += dg;
            s2 += dg * (xr[s] - mu) * r;
        }
    }
    float m1 = gn_tree_sum(buf, tid, s1) / float(len);
    float m2 = gn_tree_sum(buf, tid, s2) / float(len);

    for (uint cc = 0; cc < cpg; cc++) {
        float gm = gamma[g * cpg + cc];
        device const float* xr = xs + cc * a.spatial;
        device const float* dyr = dys + cc * a.spatial;
        device float* dxr = dxs + cc * a.spatial;
        for (uint s = tid; s < a.spatial; s += GN_THREADS) {
            float xh = (xr[s] - mu) * r;
            dxr[s] = r * (dyr[s] * gm - m1 - xh * m2);
        }
    }
}

struct GroupNormParamsArgs {
    uint batch;
    uint channels;
    uint spatial;
    uint groups;
};

// group_norm_backward_params: dγ[c] = Σ_{n,s} dy·x̂ and dβ[c] = Σ_{n,s} dy; one threadgroup
// per channel c, so no atomics and a fixed summation order.
kernel void group_norm_backward_params(constant GroupNormParamsArgs& a [[buffer(0)]],
                                       device const float* x [[buffer(1)]],
                                       device const float* dy [[buffer(2)]],
                                       device const float* mean [[buffer(3)]],
                                       device const float* rstd [[buffer(4)]],
                                       device float* dgamma [[buffer(5)]],
                                       device float* dbeta [[buffer(6)]],
                                       uint c [[threadgroup_position_in_grid]],
                                       uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float buf[GN_THREADS];
    uint g = c / (a.channels / a.groups);
    float sg = 0.0f;
    float sb = 0.0f;
    for (uint n = 0; n < a.batch; n++) {
        float mu = mean[n * a.groups + g];
        float r = rstd[n * a.groups + g];
        uint base = (n * a.channels + c) * a.spatial;
        for (uint s = tid; s < a.spatial; s += GN_THREADS) {
            float d = dy[base + s];
            sg += d * (x[base + s] - mu) * r;
            sb += d;
        }
    }
    float tg = gn_tree_sum(buf, tid, sg);
    float tb = gn_tree_sum(buf, tid, sb);
    if (tid == 0) {
        dgamma[c] = tg;
        dbeta[c] = tb;
    }
}
