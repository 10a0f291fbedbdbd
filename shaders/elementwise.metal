// Elementwise arithmetic, broadcast adds and the Welford update.
//
// Every kernel here is one thread per element over a flat index, launched in whole
// threadgroups, so each guards i < n. Buffers are bound at the tensor's first element.

#include <metal_stdlib>
using namespace metal;

struct FillArgs {
    uint n;
    float v;
};

// fill_buffer: x[i] = v.
kernel void fill_buffer(constant FillArgs& a [[buffer(0)]],
                 device float* x [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        x[i] = a.v;
    }
}

struct CountArgs {
    uint n;
};

// copy_buffer: dst[i] = src[i].
kernel void copy_buffer(constant CountArgs& a [[buffer(0)]],
                 device const float* src [[buffer(1)]],
                 device float* dst [[buffer(2)]],
                 uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        dst[i] = src[i];
    }
}

struct AxpyArgs {
    uint n;
    float a;
};

// axpy: y[i] += a·x[i].
kernel void axpy(constant AxpyArgs& a [[buffer(0)]],
                 device const float* x [[buffer(1)]],
                 device float* y [[buffer(2)]],
                 uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        y[i] += a.a * x[i];
    }
}

struct AxpbyArgs {
    uint n;
    float a;
    float b;
};

// axpby: out[i] = a·x[i] + b·y[i]; out may be x or y (each thread reads before it writes).
kernel void axpby(constant AxpbyArgs& a [[buffer(0)]],
                  device const float* x [[buffer(1)]],
                  device const float* y [[buffer(2)]],
                  device float* out [[buffer(3)]],
                  uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        out[i] = a.a * x[i] + a.b * y[i];
    }
}

struct AxpbySampleArgs {
    uint n;
    uint per; // elements per sample
};

// axpby_sample: out[i] = a[s]·x[i] + b[s]·y[i] with s = i / per.
kernel void axpby_sample(constant AxpbySampleArgs& a [[buffer(0)]],
                         device const float* sa [[buffer(1)]],
                         device const float* x [[buffer(2)]],
                         device const float* sb [[buffer(3)]],
                         device const float* y [[buffer(4)]],
                         device float* out [[buffer(5)]],
                         uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        uint s = i / a.per;
        out[i] = sa[s] * x[i] + sb[s] * y[i];
    }
}

// sq_diff: out[i] = (a[i] - b[i])².
kernel void sq_diff(constant CountArgs& a [[buffer(0)]],
                    device const float* x [[buffer(1)]],
                    device const float* y [[buffer(2)]],
                    device float* out [[buffer(3)]],
                    uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float d = x[i] - y[i];
        out[i] = d * d;
    }
}

struct AddBiasArgs {
    uint n;
    uint channels;
    uint spatial; // elements per (sample, channel)
};

// add_bias: x[n,c,…] += b[c].
kernel void add_bias(constant AddBiasArgs& a [[buffer(0)]],
                     device float* x [[buffer(1)]],
                     device const float* b [[buffer(2)]],
                     uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        x[i] += b[(i / a.spatial) % a.channels];
    }
}

struct AddSampleBiasArgs {
    uint n;
    uint spatial;
};

// add_sample_bias: x[n,c,…] += b[n,c]; (n, c) is i / spatial because b is (N, C).
kernel void add_sample_bias(constant AddSampleBiasArgs& a [[buffer(0)]],
                            device float* x [[buffer(1)]],
                            device const float* b [[buffer(2)]],
                            uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        x[i] += b[i / a.spatial];
    }
}

struct WelfordArgs {
    uint n;
    float k; // the sample's count, from 1
};

// welford: Welford's running mean and M2 for the k-th sample x.
kernel void welford(constant WelfordArgs& a [[buffer(0)]],
                    device const float* x [[buffer(1)]],
                    device float* mean [[buffer(2)]],
                    device float* m2 [[buffer(3)]],
                    uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float xi = x[i];
        float d = xi - mean[i];
        float m = mean[i] + d / a.k;
        mean[i] = m;
        m2[i] += d * (xi - m);
    }
}
