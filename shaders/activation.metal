// ReLU, SiLU and Tanh, forward and backward; one thread per element.
//
// precise:: math is used for exp and tanh: Metal compiles with fast math, whose tanh and
// exp lose accuracy for large |x|, and these values feed PyTorch-parity checks.

#include <metal_stdlib>
using namespace metal;

struct ActArgs {
    uint n;
};

// act_sigmoid is σ(x) = 1/(1+e^-x); e^-x overflows to +inf for x < -88 and σ is then 0.
inline float act_sigmoid(float x) {
    return 1.0f / (1.0f + precise::exp(-x));
}

// relu_forward: y = max(x, 0); y may be x.
kernel void relu_forward(constant ActArgs& a [[buffer(0)]],
                         device const float* x [[buffer(1)]],
                         device float* y [[buffer(2)]],
                         uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float v = x[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

// silu_forward: y = x·σ(x).
kernel void silu_forward(constant ActArgs& a [[buffer(0)]],
                         device const float* x [[buffer(1)]],
                         device float* y [[buffer(2)]],
                         uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float v = x[i];
        y[i] = v * act_sigmoid(v);
    }
}

// tanh_forward: y = tanh(x).
kernel void tanh_forward(constant ActArgs& a [[buffer(0)]],
                         device const float* x [[buffer(1)]],
                         device float* y [[buffer(2)]],
                         uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        y[i] = precise::tanh(x[i]);
    }
}

// relu_backward: dx = dy where x > 0, else 0 (PyTorch's convention at x = 0).
kernel void relu_backward(constant ActArgs& a [[buffer(0)]],
                          device const float* x [[buffer(1)]],
                          device const float* dy [[buffer(2)]],
                          device float* dx [[buffer(3)]],
                          uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
    }
}

// silu_backward: dx = dy·σ(x)·(1 + x·(1-σ(x))).
kernel void silu_backward(constant ActArgs& a [[buffer(0)]],
                          device const float* x [[buffer(1)]],
                          device const float* dy [[buffer(2)]],
                          device float* dx [[buffer(3)]],
                          uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float v = x[i];
        float s = act_sigmoid(v);
        dx[i] = dy[i] * s * (1.0f + v * (1.0f - s));
    }
}

// tanh_backward: dx = dy·(1 - y²) from the forward output y.
kernel void tanh_backward(constant ActArgs& a [[buffer(0)]],
                          device const float* y [[buffer(1)]],
                          device const float* dy [[buffer(2)]],
                          device float* dx [[buffer(3)]],
                          uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float t = y[i];
        dx[i] = dy[i] * (1.0f - t * t);
    }
}
