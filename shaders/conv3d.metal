// 3-D convolution: forward, backward-data (the transposed convolution) and backward-weight,
// for any kernel size, stride and padding, NCDHW float32.
//
// Each op is an implicit GEMM C[M×N] = A[M×K]·B[K×N] whose operands are gathered from the
// tensors on the fly (no im2col buffer):
//
//   op            M     N                 K                 A          B
//   forward       Co    batch·D'H'W'      Ci·kvol           w          x gathered at (k, col)
//   backward-data Ci    batch·DHW         Co·kvol           w (Ci↔Co)  dy gathered where the stride divides
//   backward-w    Co    Ci·kvol           batch·D'H'W'      dy         x gathered at (col, k)
//
// Three variants run every op with the same loaders, and the host picks by shape:
//   *_direct  one thread per element of C, a plain loop over K (small or thin shapes);
//   *_tiled   64×64 tiles of C, 16-deep slices of A and B in threadgroup memory, 4×4 per thread;
//   *_simd    32×32 tiles of C, 16-deep slices, four simdgroups each owning 16×16 as 2×2
//             simdgroup_float8x8.
// Backward-weight reduces over the whole batch·D'H'W', so it can split K across threadgroups
// (grid z): each split writes its own slice of a partial buffer that conv3d_sum_splits adds
// up in a fixed order. The tiled backward-data kernels use grid z for the stride's phases
// (see conv_phase), so a stride-2 transposed convolution does no multiplications by zero.

#include <metal_stdlib>
using namespace metal;

#define CONV_FWD 0
#define CONV_BWD_DATA 1
#define CONV_BWD_WEIGHT 2

struct ConvArgs {
    uint batch;
    uint cin;
    uint din;
    uint hin;
    uint win;
    uint cout;
    uint dout;
    uint hout;
    uint wout;
    uint kd;
    uint kh;
    uint kw;
    uint sd;
    uint sh;
    uint sw;
    uint pd;
    uint ph;
    uint pw;
    uint m;        // GEMM rows
    uint n;        // GEMM columns
    uint k;        // GEMM reduction length
    uint k_chunk;  // reduction length per split (grid z); k when not split
    uint has_bias; // forward only: add bias[row]
};

// conv_gather_x returns x[n, i, od·sd - pd + kd, …] for the forward B at (row kk = (i, kd, kh, kw),
// column col = (n, od, oh, ow)), or 0 in the padding.
inline float conv_gather_x(constant ConvArgs& g, device const float* x, uint kk, uint col) {
    uint khw = g.kh * g.kw;
    uint kvol = g.kd * khw;
    uint i = kk / kvol;
    uint t = kk - i * kvol;
    uint tkd = t / khw;
    t -= tkd * khw;
    uint tkh = t / g.kw;
    uint tkw = t - tkh * g.kw;

    uint ohw = g.hout * g.wout;
    uint p = ohw * g.dout;
    uint n = col / p;
    uint q = col - n * p;
    uint od = q / ohw;
    q -= od * ohw;
    uint oh = q / g.wout;
    uint ow = q - oh * g.wout;

    // Unsigned wrap-around makes a negative coordinate huge, so one compare checks both ends.
    uint id = od * g.sd + tkd - g.pd;
    uint ih = oh * g.sh + tkh - g.ph;
    uint iw = ow * g.sw + tkw - g.pw;
    if (id >= g.din || ih >= g.hin || iw >= g.win) {
        return 0.0f;
    }
    return x[((n * g.cin + i) * g.din + id) * (g.hin * g.win) + ih * g.win + iw];
}

// conv_src_coord maps an input coordinate and a kernel tap to the output coordinate that
// read it in the forward pass, or returns false when none did (off the stride or outside).
inline bool conv_src_coord(uint pos, uint tap, uint stride, uint pad, uint out_len, thread uint& out) {
    int num = int(pos + pad) - int(tap);
    if (num < 0) {
        return false;
    }
    uint u = uint(num);
    uint o = u / stride;
    if (o * stride != u || o >= out_len) {
        return false;
    }
    out = o;
    return true;
}

// conv_gather_dy returns the backward-data B at (row kk = (o, kd, kh, kw), column col =
// (n, id, ih, iw)): dy[n, o, od, oh, ow] where od·sd - pd + kd = id (and so on), else 0.
inline float conv_gather_dy(constant ConvArgs& g, device const float* dy, uint kk, uint col) {
    uint khw = g.kh * g.kw;
    uint kvol = g.kd * khw;
    uint o = kk / kvol;
    uint t = kk - o * kvol;
    uint tkd = t / khw;
    t -= tkd * khw;
    uint tkh = t / g.kw;
    uint tkw = t - tkh * g.kw;

    uint ihw = g.hin * g.win;
    uint q = ihw * g.din;
    uint n = col / q;
    uint r = col - n * q;
    uint id = r / ihw;
    r -= id * ihw;
    uint ih = r / g.win;
    uint iw = r - ih * g.win;

    uint od = 0;
    uint oh = 0;
    uint ow = 0;
    if (!conv_src_coord(id, tkd, g.sd, g.pd, g.dout, od) ||
        !conv_src_coord(ih, tkh, g.sh, g.ph, g.hout, oh) ||
        !conv_src_coord(iw, tkw, g.sw, g.pw, g.wout, ow)) {
        return 0.0f;
    }
    return dy[((n * g.cout + o) * g.dout + od) * (g.hout * g.wout) + oh * g.wout + ow];
}

template <int OP>
inline float conv_load_a(constant ConvArgs& g, device const float* a, uint row, uint kk) {
    if (OP == CONV_FWD) {
        // w is (Co, Ci·kvol) row-major.
        return a[row * g.k + kk];
    } else if (OP == CONV_BWD_DATA) {
        // w is (Co, Ci, kvol); row = i, kk = (o, tap).
        uint kvol = g.kd * g.kh * g.kw;
        uint o = kk / kvol;
        return a[(o * g.cin + row) * kvol + (kk - o * kvol)];
    } else {
        // dy is (N, Co, P); row = o, kk = (n, p).
        uint p = g.dout * g.hout * g.wout;
        uint n = kk / p;
        return a[(n * g.cout + row) * p + (kk - n * p)];
    }
}

template <int OP>
inline float conv_load_b(constant ConvArgs& g, device const float* b, uint kk, uint col) {
    if (OP == CONV_FWD) {
        return conv_gather_x(g, b, kk, col);
    } else if (OP == CONV_BWD_DATA) {
        return conv_gather_dy(g, b, kk, col);
    } else {
        return conv_gather_x(g, b, col, kk);
    }
}

// conv_store writes C[row, col] of split z.
template <int OP>
inline void conv_store(constant ConvArgs& g, device const float* bias, device float* out,
                       uint row, uint col, uint z, float v) {
    if (OP == CONV_FWD) {
        uint p = g.dout * g.hout * g.wout;
        uint n = col / p;
        if (g.has_bias != 0) {
            v += bias[row];
        }
        out[(n * g.cout + row) * p + (col - n * p)] = v;
    } else if (OP == CONV_BWD_DATA) {
        uint q = g.din * g.hin * g.win;
        uint n = col / q;
        out[(n * g.cin + row) * q + (col - n * q)] = v;
    } else {
        out[(z * g.m + row) * g.n + col] = v;
    }
}

// ---- direct: one thread per element of C ----

template <int OP>
inline void conv_direct(constant ConvArgs& g, device const float* a, device const float* b,
                        device const float* bias, device float* out, uint3 gid) {
    uint e = gid.x;
    if (e >= g.m * g.n) {
        return;
    }
    uint row = e / g.n;
    uint col = e - row * g.n;
    uint k0 = gid.z * g.k_chunk;
    uint k1 = min(g.k, k0 + g.k_chunk);
    float acc = 0.0f;
    for (uint kk = k0; kk < k1; kk++) {
        acc += conv_load_a<OP>(g, a, row, kk) * conv_load_b<OP>(g, b, kk, col);
    }
    conv_store<OP>(g, bias, out, row, col, gid.z, acc);
}

kernel void conv3d_forward_direct(constant ConvArgs& g [[buffer(0)]],
                                  device const float* a [[buffer(1)]],
                                  device const float* b [[buffer(2)]],
                                  device const float* bias [[buffer(3)]],
                                  device float* out [[buffer(4)]],
                                  uint3 gid [[thread_position_in_grid]]) {
    conv_direct<CONV_FWD>(g, a, b, bias, out, gid);
}

kernel void conv3d_backward_data_direct(constant ConvArgs& g [[buffer(0)]],
                                        device const float* a [[buffer(1)]],
                                        device const float* b [[buffer(2)]],
                                        device const float* bias [[buffer(3)]],
                                        device float* out [[buffer(4)]],
                                        uint3 gid [[thread_position_in_grid]]) {
    conv_direct<CONV_BWD_DATA>(g, a, b, bias, out, gid);
}

kernel void conv3d_backward_weight_direct(constant ConvArgs& g [[buffer(0)]],
                                          device const float* a [[buffer(1)]],
                                          device const float* b [[buffer(2)]],
                                          device const float* bias [[buffer(3)]],
                                          device float* out [[buffer(4)]],
                                          uint3 gid [[thread_position_in_grid]]) {
    conv_direct<CONV_BWD_WEIGHT>(g, a, b, bias, out, gid);
}

// ---- precomputed gathers for the tiled variants ----
//
// A gather decomposes both its GEMM row and column into tensor coordinates, several integer
// divisions per element, which dominate a GPU tile load. In the tiled kernels each thread
// loads B from one fixed column (the tile width divides the thread count), so the column
// part is computed once per tile (conv_bcol), and the k part once per k-slice by the first
// threads into threadgroup memory (conv_kb, conv_ka), leaving a few adds per element. The
// direct variant keeps the plain loaders above as an independent reference.
//
// B is x or dy read at a coordinate that is the sum of a k part and a column part:
//   forward        k = (i, tap)   → (i·DHW, kd, kh, kw);  col = (n, od, oh, ow) → (n·Ci·DHW, od·sd-pd, …)
//   backward-w     k = (n, pixel) → (n·Ci·DHW, od·sd-pd, …); col = (i, tap) → (i·DHW, kd, kh, kw)
// (negative coordinates wrap around as unsigned values and fail the bounds checks). A is
// a[ka(k) + row·conv_a_stride].
//
// Backward-data with stride s reads dy only where the stride divides id + pd - kd, so a
// plain gather would multiply by zero for all but 1/s³ of its terms. Instead grid z is a
// phase ρ = (ρd, ρh, ρw) of the input coordinates, (id + pd) mod s = ρ, whose only taps are
// kd = ρd + s·t: each phase is a dense stride-1 GEMM over columns (n, jd, jh, jw) with
// id = id0 + s·jd, and k = (o, td, th, tw), reading dy at od = jd + c0 - td.

// ConvPhase is what a threadgroup works on: its columns, its reduction range and, for
// backward-data, its phase.
struct ConvPhase {
    uint n;  // GEMM columns
    uint k0; // reduction range [k0, k1)
    uint k1;
    uint z;  // split index (backward-weight partials)
    uint rd, rh, rw;    // phase residues (backward-data)
    uint id0, ih0, iw0; // first input coordinate of the phase
    uint nd, nh, nw;    // input coordinates of the phase per axis
    uint td, th, tw;    // taps of the phase per axis
    uint c0d, c0h, c0w; // od = jd + c0d - t
};

// conv_axis fills one axis of a phase: residue r, stride s, padding p, input extent len,
// kernel extent k.
inline void conv_axis(uint r, uint s, uint p, uint len, uint k,
                      thread uint& i0, thread uint& cnt, thread uint& taps, thread uint& c0) {
    i0 = (r + s - p % s) % s;
    cnt = len > i0 ? (len - i0 + s - 1) / s : 0;
    taps = k > r ? (k - r + s - 1) / s : 0;
    c0 = (i0 + p - r) / s; // exact: i0 + p ≡ r (mod s), and i0 + p - r > -s
}

template <int OP>
inline ConvPhase conv_phase(constant ConvArgs& g, uint z) {
    ConvPhase ph;
    ph.z = z;
    ph.n = g.n;
    ph.k0 = z * g.k_chunk;
    ph.k1 = min(g.k, ph.k0 + g.k_chunk);
    if (OP == CONV_BWD_DATA) {
        ph.rd = z / (g.sh * g.sw);
        ph.rh = (z / g.sw) % g.sh;
        ph.rw = z % g.sw;
        conv_axis(ph.rd, g.sd, g.pd, g.din, g.kd, ph.id0, ph.nd, ph.td, ph.c0d);
        conv_axis(ph.rh, g.sh, g.ph, g.hin, g.kh, ph.ih0, ph.nh, ph.th, ph.c0h);
        conv_axis(ph.rw, g.sw, g.pw, g.win, g.kw, ph.iw0, ph.nw, ph.tw, ph.c0w);
        ph.n = g.batch * ph.nd * ph.nh * ph.nw;
        ph.k0 = 0;
        ph.k1 = g.cout * ph.td * ph.th * ph.tw;
    }
    return ph;
}

inline uint4 conv_tap(constant ConvArgs& g, uint kk, uint unit) {
    uint khw = g.kh * g.kw;
    uint kvol = g.kd * khw;
    uint i = kk / kvol;
    uint t = kk - i * kvol;
    uint tkd = t / khw;
    t -= tkd * khw;
    uint tkh = t / g.kw;
    return uint4(i * unit, tkd, tkh, t - tkh * g.kw);
}

inline uint4 conv_pixel(constant ConvArgs& g, uint col) {
    uint ohw = g.hout * g.wout;
    uint p = ohw * g.dout;
    uint n = col / p;
    uint q = col - n * p;
    uint od = q / ohw;
    q -= od * ohw;
    uint oh = q / g.wout;
    uint ow = q - oh * g.wout;
    return uint4(n * g.cin * g.din * g.hin * g.win, od * g.sd - g.pd, oh * g.sh - g.ph, ow * g.sw - g.pw);
}

// conv_phase_tap splits a backward-data k into (o, td, th, tw) of the phase.
inline uint4 conv_phase_tap(thread const ConvPhase& ph, uint kk) {
    uint thw = ph.th * ph.tw;
    uint tvol = ph.td * thw;
    uint o = kk / tvol;
    uint t = kk - o * tvol;
    uint a = t / thw;
    t -= a * thw;
    uint b = t / ph.tw;
    return uint4(o, a, b, t - b * ph.tw);
}

// conv_phase_col splits a backward-data column into (n, jd, jh, jw) of the phase.
inline uint4 conv_phase_col(thread const ConvPhase& ph, uint col) {
    uint jhw = ph.nh * ph.nw;
    uint q = jhw * ph.nd;
    uint n = col / q;
    uint r = col - n * q;
    uint jd = r / jhw;
    r -= jd * jhw;
    uint jh = r / ph.nw;
    return uint4(n, jd, jh, r - jh * ph.nw);
}

template <int OP>
inline uint4 conv_kb(constant ConvArgs& g, thread const ConvPhase& ph, uint kk) {
    if (OP == CONV_FWD) {
        return conv_tap(g, kk, g.din * g.hin * g.win);
    } else if (OP == CONV_BWD_DATA) {
        uint4 t = conv_phase_tap(ph, kk);
        return uint4(t.x * g.dout * g.hout * g.wout, t.y, t.z, t.w);
    } else {
        return conv_pixel(g, kk);
    }
}

template <int OP>
inline uint4 conv_bcol(constant ConvArgs& g, thread const ConvPhase& ph, uint col) {
    if (OP == CONV_FWD) {
        return conv_pixel(g, col);
    } else if (OP == CONV_BWD_DATA) {
        uint4 c = conv_phase_col(ph, col);
        return uint4(c.x * g.cout * g.dout * g.hout * g.wout, c.y + ph.c0d, c.z + ph.c0h, c.w + ph.c0w);
    } else {
        return conv_tap(g, col, g.din * g.hin * g.win);
    }
}

template <int OP>
inline uint conv_ka(constant ConvArgs& g, thread const ConvPhase& ph, uint kk) {
    if (OP == CONV_FWD) {
        return kk;
    } else if (OP == CONV_BWD_DATA) {
        // w[o, i, kd, kh, kw] with the phase's tap kd = ρd + sd·td (and so on).
        uint4 t = conv_phase_tap(ph, kk);
        uint tap = ((ph.rd + g.sd * t.y) * g.kh + ph.rh + g.sh * t.z) * g.kw + ph.rw + g.sw * t.w;
        return t.x * g.cin * g.kd * g.kh * g.kw + tap;
    } else {
        uint p = g.dout * g.hout * g.wout;
        uint n = kk / p;
        return n * g.cout * p + (kk - n * p);
    }
}

template <int OP>
inline uint conv_a_stride(constant ConvArgs& g) {
    if (OP == CONV_FWD) {
        return g.k;
    } else if (OP == CONV_BWD_DATA) {
        return g.kd * g.kh * g.kw;
    } else {
        return g.dout * g.hout * g.wout;
    }
}

template <int OP>
inline float conv_b_fast(constant ConvArgs& g, device const float* b, uint4 kb, uint4 cb) {
    if (OP == CONV_BWD_DATA) {
        // od = jd + c0 - td, negative values wrapping around.
        uint od = cb.y - kb.y;
        uint oh = cb.z - kb.z;
        uint ow = cb.w - kb.w;
        if (od >= g.dout || oh >= g.hout || ow >= g.wout) {
            return 0.0f;
        }
        return b[kb.x + cb.x + (od * g.hout + oh) * g.wout + ow];
    } else {
        uint id = kb.y + cb.y;
        uint ih = kb.z + cb.z;
        uint iw = kb.w + cb.w;
        if (id >= g.din || ih >= g.hin || iw >= g.win) {
            return 0.0f;
        }
        return b[kb.x + cb.x + (id * g.hin + ih) * g.win + iw];
    }
}

// conv_store_fast writes C[row, col] of the threadgroup's phase or split.
template <int OP>
inline void conv_store_fast(constant ConvArgs& g, thread const ConvPhase& ph, device const float* bias,
                            device float* out, uint row, uint col, float v) {
    if (OP == CONV_BWD_DATA) {
        uint4 c = conv_phase_col(ph, col);
        uint id = ph.id0 + g.sd * c.y;
        uint ih = ph.ih0 + g.sh * c.z;
        uint iw = ph.iw0 + g.sw * c.w;
        out[((c.x * g.cin + row) * g.din + id) * (g.hin * g.win) + ih * g.win + iw] = v;
    } else {
        conv_store<OP>(g, bias, out, row, col, ph.z, v);
    }
}

// ---- tiled: 64×64 tile of C per threadgroup of 256 threads, 4×4 per thread ----

#define CT_BM 64
#define CT_BN 64
#define CT_BK 16
#define CT_THREADS 256

// as is [CT_BK][CT_BM] and bs is [CT_BK][CT_BN], flattened; a thread owns rows tr + 16·i and
// columns tc + 16·j so neighbouring threads read neighbouring threadgroup words.
template <int OP>
inline void conv_tiled(constant ConvArgs& g, device const float* a, device const float* b,
                       device const float* bias, device float* out,
                       threadgroup float* as, threadgroup float* bs, threadgroup uint4* kbs,
                       threadgroup uint* kas, uint3 group, uint tid) {
    ConvPhase ph = conv_phase<OP>(g, group.z);
    uint row0 = group.y * CT_BM;
    uint col0 = group.x * CT_BN;
    uint k0 = ph.k0;
    uint k1 = ph.k1;
    uint tr = tid / 16;
    uint tc = tid % 16;
    float acc[4][4];
    for (uint i = 0; i < 4; i++) {
        for (uint j = 0; j < 4; j++) {
            acc[i][j] = 0.0f;
        }
    }
    // This thread loads A from row mm = tid % CT_BM and B from column nn = tid % CT_BN.
    uint mm = tid % CT_BM;
    uint nn = tid % CT_BN;
    bool row_ok = row0 + mm < g.m;
    bool col_ok = col0 + nn < ph.n;
    uint arow = (row0 + mm) * conv_a_stride<OP>(g);
    uint4 cb = col_ok ? conv_bcol<OP>(g, ph, col0 + nn) : uint4(0);
    for (uint kt = k0; kt < k1; kt += CT_BK) {
        if (tid < CT_BK && kt + tid < k1) {
            kbs[tid] = conv_kb<OP>(g, ph, kt + tid);
            kas[tid] = conv_ka<OP>(g, ph, kt + tid);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint l = 0; l < (CT_BK * CT_BM) / CT_THREADS; l++) {
            uint kk = (tid + l * CT_THREADS) / CT_BM;
            float va = 0.0f;
            if (row_ok && kt + kk < k1) {
                va = a[kas[kk] + arow];
            }
            as[kk * CT_BM + mm] = va;
        }
        for (uint l = 0; l < (CT_BK * CT_BN) / CT_THREADS; l++) {
            uint kk = (tid + l * CT_THREADS) / CT_BN;
            float vb = 0.0f;
            if (col_ok && kt + kk < k1) {
                vb = conv_b_fast<OP>(g, b, kbs[kk], cb);
            }
            bs[kk * CT_BN + nn] = vb;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint kk = 0; kk < CT_BK; kk++) {
            float ra[4];
            float rb[4];
            for (uint i = 0; i < 4; i++) {
                ra[i] = as[kk * CT_BM + tr + 16 * i];
                rb[i] = bs[kk * CT_BN + tc + 16 * i];
            }
            for (uint i = 0; i < 4; i++) {
                for (uint j = 0; j < 4; j++) {
                    acc[i][j] += ra[i] * rb[j];
                }
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    for (uint i = 0; i < 4; i++) {
        uint row = row0 + tr + 16 * i;
        for (uint j = 0; j < 4; j++) {
            uint col = col0 + tc + 16 * j;
            if (row < g.m && col < ph.n) {
                conv_store_fast<OP>(g, ph, bias, out, row, col, acc[i][j]);
            }
        }
    }
}

kernel void conv3d_forward_tiled(constant ConvArgs& g [[buffer(0)]],
                                 device const float* a [[buffer(1)]],
                                 device const float* b [[buffer(2)]],
                                 device const float* bias [[buffer(3)]],
                                 device float* out [[buffer(4)]],
                                 uint3 group [[threadgroup_position_in_grid]],
                                 uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float as[CT_BK * CT_BM];
    threadgroup float bs[CT_BK * CT_BN];
    threadgroup uint4 kbs[CT_BK];
    threadgroup uint kas[CT_BK];
    conv_tiled<CONV_FWD>(g, a, b, bias, out, as, bs, kbs, kas, group, tid);
}

kernel void conv3d_backward_data_tiled(constant ConvArgs& g [[buffer(0)]],
                                       device const float* a [[buffer(1)]],
                                       device const float* b [[buffer(2)]],
                                       device const float* bias [[buffer(3)]],
                                       device float* out [[buffer(4)]],
                                       uint3 group [[threadgroup_position_in_grid]],
                                       uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float as[CT_BK * CT_BM];
    threadgroup float bs[CT_BK * CT_BN];
    threadgroup uint4 kbs[CT_BK];
    threadgroup uint kas[CT_BK];
    conv_tiled<CONV_BWD_DATA>(g, a, b, bias, out, as, bs, kbs, kas, group, tid);
}

kernel void conv3d_backward_weight_tiled(constant ConvArgs& g [[buffer(0)]],
                                         device const float* a [[buffer(1)]],
                                         device const float* b [[buffer(2)]],
                                         device const float* bias [[buffer(3)]],
                                         device float* out [[buffer(4)]],
                                         uint3 group [[threadgroup_position_in_grid]],
                                         uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float as[CT_BK * CT_BM];
    threadgroup float bs[CT_BK * CT_BN];
    threadgroup uint4 kbs[CT_BK];
    threadgroup uint kas[CT_BK];
    conv_tiled<CONV_BWD_WEIGHT>(g, a, b, bias, out, as, bs, kbs, kas, group, tid);
}

// ---- simd: 32×32 tile of C per threadgroup of 4 simdgroups (128 threads) ----

#define CS_BM 32
#define CS_BN 32
#define CS_BK 16
#define CS_THREADS 128

// as is [CS_BM][CS_BK], bs is [CS_BK][CS_BN] and cs is [CS_BM][CS_BN]; simdgroup s owns
// rows 16·(s/2)… and columns 16·(s%2)… of the tile.
template <int OP>
inline void conv_simd(constant ConvArgs& g, device const float* a, device const float* b,
                      device const float* bias, device float* out,
                      threadgroup float* as, threadgroup float* bs, threadgroup float* cs,
                      threadgroup uint4* kbs, threadgroup uint* kas, uint3 group, uint tid, uint sg) {
    ConvPhase ph = conv_phase<OP>(g, group.z);
    uint row0 = group.y * CS_BM;
    uint col0 = group.x * CS_BN;
    uint k0 = ph.k0;
    uint k1 = ph.k1;
    uint sr = (sg / 2) * 16;
    uint sc = (sg % 2) * 16;
    simdgroup_float8x8 acc[2][2];
    for (uint i = 0; i < 2; i++) {
        for (uint j = 0; j < 2; j++) {
            acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
        }
    }
    // This thread loads A at slice depth ka = tid % CS_BK and B from column nn = tid % CS_BN.
    uint ka = tid % CS_BK;
    uint nn = tid % CS_BN;
    bool col_ok = col0 + nn < ph.n;
    uint astride = conv_a_stride<OP>(g);
    uint4 cb = col_ok ? conv_bcol<OP>(g, ph, col0 + nn) : uint4(0);
    for (uint kt = k0; kt < k1; kt += CS_BK) {
        if (tid < CS_BK && kt + tid < k1) {
            kbs[tid] = conv_kb<OP>(g, ph, kt + tid);
            kas[tid] = conv_ka<OP>(g, ph, kt + tid);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        bool k_ok = kt + ka < k1;
        for (uint l = 0; l < (CS_BM * CS_BK) / CS_THREADS; l++) {
            uint mm = (tid + l * CS_THREADS) / CS_BK;
            float va = 0.0f;
            if (row0 + mm < g.m && k_ok) {
                va = a[kas[ka] + (row0 + mm) * astride];
            }
            as[mm * CS_BK + ka] = va;
        }
        for (uint l = 0; l < (CS_BK * CS_BN) / CS_THREADS; l++) {
            uint kk = (tid + l * CS_THREADS) / CS_BN;
            float vb = 0.0f;
            if (col_ok && kt + kk < k1) {
                vb = conv_b_fast<OP>(g, b, kbs[kk], cb);
            }
            bs[kk * CS_BN + nn] = vb;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint ks = 0; ks < CS_BK; ks += 8) {
            simdgroup_float8x8 ma[2];
            simdgroup_float8x8 mb[2];
            for (uint i = 0; i < 2; i++) {
                simdgroup_load(ma[i], as + (sr + 8 * i) * CS_BK + ks, CS_BK);
                simdgroup_load(mb[i], bs + ks * CS_BN + sc + 8 * i, CS_BN);
            }
            for (uint i = 0; i < 2; i++) {
                for (uint j = 0; j < 2; j++) {
                    simdgroup_multiply_accumulate(acc[i][j], ma[i], mb[j], acc[i][j]);
                }
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    for (uint i = 0; i < 2; i++) {
        for (uint j = 0; j < 2; j++) {
            simdgroup_store(acc[i][j], cs + (sr + 8 * i) * CS_BN + sc + 8 * j, CS_BN);
        }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint l = 0; l < (CS_BM * CS_BN) / CS_THREADS; l++) {
        uint e = tid + l * CS_THREADS;
        uint row = row0 + e / CS_BN;
        uint col = col0 + e % CS_BN;
        if (row < g.m && col < ph.n) {
            conv_store_fast<OP>(g, ph, bias, out, row, col, cs[e]);
        }
    }
}

kernel void conv3d_forward_simd(constant ConvArgs& g [[buffer(0)]],
                                device const float* a [[buffer(1)]],
                                device const float* b [[buffer(2)]],
                                device const float* bias [[buffer(3)]],
                                device float* out [[buffer(4)]],
                                uint3 group [[threadgroup_position_in_grid]],
                                uint tid [[thread_index_in_threadgroup]],
                                uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float as[CS_BM * CS_BK];
    threadgroup float bs[CS_BK * CS_BN];
    threadgroup float cs[CS_BM * CS_BN];
    threadgroup uint4 kbs[CS_BK];
    threadgroup uint kas[CS_BK];
    conv_simd<CONV_FWD>(g, a, b, bias, out, as, bs, cs, kbs, kas, group, tid, sg);
}

kernel void conv3d_backward_data_simd(constant ConvArgs& g [[buffer(0)]],
                                      device const float* a [[buffer(1)]],
                                      device const float* b [[buffer(2)]],
                                      device const float* bias [[buffer(3)]],
                                      device float* out [[buffer(4)]],
                                      uint3 group [[threadgroup_position_in_grid]],
                                      uint tid [[thread_index_in_threadgroup]],
                                      uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float as[CS_BM * CS_BK];
    threadgroup float bs[CS_BK * CS_BN];
    threadgroup float cs[CS_BM * CS_BN];
    threadgroup uint4 kbs[CS_BK];
    threadgroup uint kas[CS_BK];
    conv_simd<CONV_BWD_DATA>(g, a, b, bias, out, as, bs, cs, kbs, kas, group, tid, sg);
}

kernel void conv3d_backward_weight_simd(constant ConvArgs& g [[buffer(0)]],
                                        device const float* a [[buffer(1)]],
                                        device const float* b [[buffer(2)]],
                                        device const float* bias [[buffer(3)]],
                                        device float* out [[buffer(4)]],
                                        uint3 group [[threadgroup_position_in_grid]],
                                        uint tid [[thread_index_in_threadgroup]],
                                        uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float as[CS_BM * CS_BK];
    threadgroup float bs[CS_BK * CS_BN];
    threadgroup float cs[CS_BM * CS_BN];
    threadgroup uint4 kbs[CS_BK];
    threadgroup uint kas[CS_BK];
    conv_simd<CONV_BWD_WEIGHT>(g, a, b, bias, out, as, bs, cs, kbs, kas, group, tid, sg);
}

struct SumSplitsArgs {
    uint n;      // elements of the result
    uint splits; // partial results, each n long, one after another
};

// conv3d_sum_splits: out[i] = Σ_z part[z·n + i], in order of z.
kernel void conv3d_sum_splits(constant SumSplitsArgs& a [[buffer(0)]],
                              device const float* part [[buffer(1)]],
                              device float* out [[buffer(2)]],
                              uint i [[thread_position_in_grid]]) {
    if (i < a.n) {
        float acc = 0.0f;
        for (uint z = 0; z < a.splits; z++) {
            acc += part[z * a.n + i];
        }
        out[i] = acc;
    }
}
