// Deliberately broken synchronisation for the MSL emulator's tests.
#include <metal_stdlib>
using namespace metal;

struct FaultArgs {
    uint n;
};

// divergent_barrier: half the group waits at one barrier, half at another: a deadlock (or
// undefined behaviour) on the GPU, an error from the emulator.
kernel void divergent_barrier(constant FaultArgs& g [[buffer(0)]],
                              device float* out [[buffer(1)]],
                              uint tid [[thread_index_in_threadgroup]]) {
    if (tid < 16) {
        threadgroup_barrier(mem_flags::mem_threadgroup);
    } else {
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    out[tid] = 1.0f;
}

// early_exit: threads past n return before the barrier; the rest must still get through it
// (threads that returned are not waited for).
kernel void early_exit(constant FaultArgs& g [[buffer(0)]],
                       device float* out [[buffer(1)]],
                       uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float s[64];
    if (tid >= g.n) {
        return;
    }
    s[tid] = float(tid);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = s[g.n - 1 - tid];
}

// uninit_read: the second half of the group reads threadgroup slots nobody wrote, which hold
// garbage on the GPU (NaN here).
kernel void uninit_read(constant FaultArgs& g [[buffer(0)]],
                        device float* out [[buffer(1)]],
                        uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float s[64];
    if (tid < 32) {
        s[tid] = float(tid);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = s[63 - tid];
}
