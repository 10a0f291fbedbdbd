// The fused Adam step (torch.optim.Adam, not AdamW) over one flat parameter buffer: one
// thread per parameter, one dispatch per training step. The bias corrections are folded
// into step_size and bc2_sqrt on the host (compute.AdamArgs).

#include <metal_stdlib>
using namespace metal;

struct AdamStepArgs {
    uint n;
    float beta1;
    float beta2;
    float c1; // 1 - beta1, formed as PyTorch does (in double from the decimal, rounded once)
    float c2; // 1 - beta2, likewise: 1 - float(0.999) would be ~200 ulps off
    float eps;
    float weight_decay;
    float step_size; // lr / (1 - beta1^step)
    float bc2_sqrt;  // sqrt(1 - beta2^step)
};

// adam_step: g' = g + wd·p; m = β1·m + (1-β1)·g'; v = β2·v + (1-β2)·g'²;
// p -= step_size·m / (sqrt(v)/bc2_sqrt + eps).
kernel void adam_step(constant AdamStepArgs& a [[buffer(0)]],
                      device float* p [[buffer(1)]],
                      device const float* g [[buffer(2)]],
                      device float* m [[buffer(3)]],
                      device float* v [[buffer(4)]],
                      uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float pi = p[i];
        // fma rounds each update once after the decay product, as PyTorch's CPU kernel
        // does; v's error is doubled by the square, so this matters at the 4-ulp level.
        float gi = fma(a.weight_decay, pi, g[i]);
        float mi = fma(a.c1, gi, a.beta1 * m[i]);
        float vi = fma(a.c2 * gi, gi, a.beta2 * v[i]);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - a.step_size * mi / (precise::sqrt(vi) / a.bc2_sqrt + a.eps);
    }
}
