// The fused Adam step (torch.optim.Adam, not AdamW) over one flat parameter buffer: one
// thread per parameter, one dispatch per training step. The bias corrections are folded
// into step_size and bc2_sqrt on the host (compute.AdamArgs).

#include <metal_stdlib>
using namespace metal;

struct AdamStepArgs {
    uint n;
    float beta1;
    float beta2;
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
        float gi = g[i] + a.weight_decay * pi;
        float mi = a.beta1 * m[i] + (1.0f - a.beta1) * gi;
        float vi = a.beta2 * v[i] + (1.0f - a.beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - a.step_size * mi / (precise::sqrt(vi) / a.bc2_sqrt + a.eps);
    }
}
