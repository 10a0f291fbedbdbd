// emu.h: what the Metal Shading Language provides, in C++ that g++ compiles, so that the
// project's .metal kernels run unmodified on a CPU. The generator (metal/emu/gen) includes
// this header at the top of every generated translation unit; kernels never include it.
//
// Deliberately lean (no standard headers beyond stdint): every generated package compiles it,
// and the C++ compile dominates the test time. Supported: scalar and 2/3/4-vector types with
// arithmetic, comparisons and read swizzles (the generator turns `.xy` into `.swz<0,1>()`),
// MSL math (also under metal::precise and metal::fast, computed precisely here), as_type,
// atomics on device and threadgroup memory, threadgroup_barrier, simd-group functions over
// 32-lane simdgroups, and simdgroup_matrix (each lane holds the whole matrix, valid because
// MSL requires simdgroup-uniform operands). Not supported: textures, samplers, half vectors,
// matrix types such as float4x4, thread_elements().
#ifndef LATENTAD_EMU_H
#define LATENTAD_EMU_H

#include "emu_abi.h"

typedef unsigned int uint;
typedef unsigned short ushort;
typedef unsigned char uchar;
typedef uint64_t ulong;
#if defined(__aarch64__)
typedef __fp16 half;  // g++ 12 on arm64 has no _Float16 in C++; __fp16 computes in float
#else
typedef _Float16 half;
#endif
typedef __SIZE_TYPE__ size_t;

#define MAXFLOAT 0x1.fffffep127f
#define HUGE_VALF __builtin_huge_valf()
#define INFINITY __builtin_inff()
#define NAN __builtin_nanf("")
#define FLT_MAX 0x1.fffffep127f
#define FLT_MIN 0x1p-126f
#define FLT_EPSILON 0x1p-23f
#define M_PI_F 3.14159265358979323846264338327950288f
#define M_E_F 2.71828182845904523536028747135266250f
#define M_LN2_F 0.693147180559945309417232121458176568f
#define M_SQRT2_F 1.41421356237309504880168872420969808f

// ---- vectors ----

template <class T>
struct emu_nd {
	typedef T type;
};

template <class T, int N>
struct vec;

// Read swizzles: the generator rewrites v.zyx into v.swz<2,1,0>().
#define EMU_VEC_COMMON                                                            \
	T& operator[](int i) { return (&x)[i]; }                                      \
	const T& operator[](int i) const { return (&x)[i]; }                          \
	template <int... I>                                                           \
	vec<T, (int)sizeof...(I)> swz() const { return vec<T, (int)sizeof...(I)>((*this)[I]...); }

template <class T>
struct alignas(2 * sizeof(T)) vec<T, 2> {
	T x, y;
	vec() = default;
	constexpr vec(T s) : x(s), y(s) {}
	constexpr vec(T a, T b) : x(a), y(b) {}
	template <class U>
	explicit constexpr vec(vec<U, 2> o) : x(T(o.x)), y(T(o.y)) {}
	EMU_VEC_COMMON
};

template <class T>
struct alignas(4 * sizeof(T)) vec<T, 3> {
	T x, y, z;
	vec() = default;
	constexpr vec(T s) : x(s), y(s), z(s) {}
	constexpr vec(T a, T b, T c) : x(a), y(b), z(c) {}
	constexpr vec(vec<T, 2> a, T c) : x(a.x), y(a.y), z(c) {}
	constexpr vec(T a, vec<T, 2> b) : x(a), y(b.x), z(b.y) {}
	template <class U>
	explicit constexpr vec(vec<U, 3> o) : x(T(o.x)), y(T(o.y)), z(T(o.z)) {}
	EMU_VEC_COMMON
};

template <class T>
struct alignas(4 * sizeof(T)) vec<T, 4> {
	T x, y, z, w;
	vec() = default;
	constexpr vec(T s) : x(s), y(s), z(s), w(s) {}
	constexpr vec(T a, T b, T c, T d) : x(a), y(b), z(c), w(d) {}
	constexpr vec(vec<T, 2> a, T c, T d) : x(a.x), y(a.y), z(c), w(d) {}
	constexpr vec(T a, vec<T, 2> b, T d) : x(a), y(b.x), z(b.y), w(d) {}
	constexpr vec(T a, T b, vec<T, 2> c) : x(a), y(b), z(c.x), w(c.y) {}
	constexpr vec(vec<T, 2> a, vec<T, 2> b) : x(a.x), y(a.y), z(b.x), w(b.y) {}
	constexpr vec(vec<T, 3> a, T d) : x(a.x), y(a.y), z(a.z), w(d) {}
	constexpr vec(T a, vec<T, 3> b) : x(a), y(b.x), z(b.y), w(b.z) {}
	template <class U>
	explicit constexpr vec(vec<U, 4> o) : x(T(o.x)), y(T(o.y)), z(T(o.z)), w(T(o.w)) {}
	EMU_VEC_COMMON
};

#define EMU_VEC_TYPES(T, name) \
	typedef vec<T, 2> name##2;  \
	typedef vec<T, 3> name##3;  \
	typedef vec<T, 4> name##4;
EMU_VEC_TYPES(float, float)
EMU_VEC_TYPES(int, int)
EMU_VEC_TYPES(uint, uint)
EMU_VEC_TYPES(short, short)
EMU_VEC_TYPES(ushort, ushort)
EMU_VEC_TYPES(char, char)
EMU_VEC_TYPES(uchar, uchar)
EMU_VEC_TYPES(long, long)
EMU_VEC_TYPES(ulong, ulong)
EMU_VEC_TYPES(bool, bool)

#define EMU_BINOP(op)                                                                         \
	template <class T, int N>                                                                 \
	inline vec<T, N> operator op(vec<T, N> a, vec<T, N> b) {                                  \
		vec<T, N> r;                                                                          \
		for (int i = 0; i < N; i++) r[i] = a[i] op b[i];                                      \
		return r;                                                                             \
	}                                                                                         \
	template <class T, int N>                                                                 \
	inline vec<T, N> operator op(vec<T, N> a, typename emu_nd<T>::type b) {                   \
		vec<T, N> r;                                                                          \
		for (int i = 0; i < N; i++) r[i] = a[i] op b;                                         \
		return r;                                                                             \
	}                                                                                         \
	template <class T, int N>                                                                 \
	inline vec<T, N> operator op(typename emu_nd<T>::type a, vec<T, N> b) {                   \
		vec<T, N> r;                                                                          \
		for (int i = 0; i < N; i++) r[i] = a op b[i];                                         \
		return r;                                                                             \
	}                                                                                         \
	template <class T, int N>                                                                 \
	inline vec<T, N>& operator op##=(vec<T, N>& a, vec<T, N> b) {                             \
		for (int i = 0; i < N; i++) a[i] op## = b[i];                                         \
		return a;                                                                             \
	}                                                                                         \
	template <class T, int N>                                                                 \
	inline vec<T, N>& operator op##=(vec<T, N>& a, typename emu_nd<T>::type b) {              \
		for (int i = 0; i < N; i++) a[i] op## = b;                                            \
		return a;                                                                             \
	}
EMU_BINOP(+)
EMU_BINOP(-)
EMU_BINOP(*)
EMU_BINOP(/)
EMU_BINOP(%)
EMU_BINOP(&)
EMU_BINOP(|)
EMU_BINOP(^)
EMU_BINOP(<<)
EMU_BINOP(>>)

#define EMU_CMPOP(op)                                                              \
	template <class T, int N>                                                      \
	inline vec<bool, N> operator op(vec<T, N> a, vec<T, N> b) {                    \
		vec<bool, N> r;                                                            \
		for (int i = 0; i < N; i++) r[i] = a[i] op b[i];                           \
		return r;                                                                  \
	}                                                                              \
	template <class T, int N>                                                      \
	inline vec<bool, N> operator op(vec<T, N> a, typename emu_nd<T>::type b) {     \
		vec<bool, N> r;                                                            \
		for (int i = 0; i < N; i++) r[i] = a[i] op b;                              \
		return r;                                                                  \
	}                                                                              \
	template <class T, int N>                                                      \
	inline vec<bool, N> operator op(typename emu_nd<T>::type a, vec<T, N> b) {     \
		vec<bool, N> r;                                                            \
		for (int i = 0; i < N; i++) r[i] = a op b[i];                              \
		return r;                                                                  \
	}
EMU_CMPOP(==)
EMU_CMPOP(!=)
EMU_CMPOP(<)
EMU_CMPOP(<=)
EMU_CMPOP(>)
EMU_CMPOP(>=)
EMU_CMPOP(&&)
EMU_CMPOP(||)

template <class T, int N>
inline vec<T, N> operator-(vec<T, N> a) {
	for (int i = 0; i < N; i++) a[i] = -a[i];
	return a;
}
template <class T, int N>
inline vec<T, N> operator+(vec<T, N> a) { return a; }
template <class T, int N>
inline vec<T, N> operator~(vec<T, N> a) {
	for (int i = 0; i < N; i++) a[i] = ~a[i];
	return a;
}
template <int N>
inline vec<bool, N> operator!(vec<bool, N> a) {
	for (int i = 0; i < N; i++) a[i] = !a[i];
	return a;
}

// ---- MSL standard library ----

namespace metal {

inline bool all(bool b) { return b; }
inline bool any(bool b) { return b; }
template <int N>
inline bool all(vec<bool, N> v) {
	for (int i = 0; i < N; i++)
		if (!v[i]) return false;
	return true;
}
template <int N>
inline bool any(vec<bool, N> v) {
	for (int i = 0; i < N; i++)
		if (v[i]) return true;
	return false;
}

// select(a, b, c) is c ? b : a, elementwise.
template <class T>
inline T select(T a, T b, bool c) { return c ? b : a; }
template <class T, int N>
inline vec<T, N> select(vec<T, N> a, vec<T, N> b, vec<bool, N> c) {
	for (int i = 0; i < N; i++) a[i] = c[i] ? b[i] : a[i];
	return a;
}

template <class T, class U>
inline T as_type(U u) {
	static_assert(sizeof(T) == sizeof(U), "as_type needs types of the same size");
	T t;
	__builtin_memcpy(&t, &u, sizeof(T));
	return t;
}

// One-argument float functions, scalar and elementwise.
#define EMU_F1(name, expr)                                       \
	inline float name(float x) { return expr; }                  \
	template <int N>                                             \
	inline vec<float, N> name(vec<float, N> v) {                 \
		for (int i = 0; i < N; i++) v[i] = name(v[i]);           \
		return v;                                                \
	}
EMU_F1(exp, __builtin_expf(x))
EMU_F1(exp2, __builtin_exp2f(x))
EMU_F1(exp10, __builtin_powf(10.0f, x))
EMU_F1(log, __builtin_logf(x))
EMU_F1(log2, __builtin_log2f(x))
EMU_F1(log10, __builtin_log10f(x))
EMU_F1(sqrt, __builtin_sqrtf(x))
EMU_F1(rsqrt, 1.0f / __builtin_sqrtf(x))
EMU_F1(sin, __builtin_sinf(x))
EMU_F1(cos, __builtin_cosf(x))
EMU_F1(tan, __builtin_tanf(x))
EMU_F1(sinh, __builtin_sinhf(x))
EMU_F1(cosh, __builtin_coshf(x))
EMU_F1(tanh, __builtin_tanhf(x))
EMU_F1(asin, __builtin_asinf(x))
EMU_F1(acos, __builtin_acosf(x))
EMU_F1(atan, __builtin_atanf(x))
EMU_F1(floor, __builtin_floorf(x))
EMU_F1(ceil, __builtin_ceilf(x))
EMU_F1(round, __builtin_roundf(x))
EMU_F1(rint, __builtin_rintf(x))
EMU_F1(trunc, __builtin_truncf(x))
EMU_F1(fabs, __builtin_fabsf(x))
EMU_F1(abs, __builtin_fabsf(x))
EMU_F1(fract, __builtin_fminf(x - __builtin_floorf(x), 0x1.fffffep-1f))
EMU_F1(saturate, __builtin_fminf(__builtin_fmaxf(x, 0.0f), 1.0f))
EMU_F1(sign, x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f))

#define EMU_F2(name, expr)                                                  \
	inline float name(float x, float y) { return expr; }                    \
	template <int N>                                                        \
	inline vec<float, N> name(vec<float, N> a, vec<float, N> b) {           \
		for (int i = 0; i < N; i++) a[i] = name(a[i], b[i]);                \
		return a;                                                           \
	}                                                                       \
	template <int N>                                                        \
	inline vec<float, N> name(vec<float, N> a, float b) {                   \
		for (int i = 0; i < N; i++) a[i] = name(a[i], b);                   \
		return a;                                                           \
	}
EMU_F2(pow, __builtin_powf(x, y))
EMU_F2(powr, __builtin_powf(x, y))
EMU_F2(fmin, __builtin_fminf(x, y))
EMU_F2(fmax, __builtin_fmaxf(x, y))
EMU_F2(min, __builtin_fminf(x, y))
EMU_F2(max, __builtin_fmaxf(x, y))
EMU_F2(fmod, __builtin_fmodf(x, y))
EMU_F2(atan2, __builtin_atan2f(x, y))
EMU_F2(copysign, __builtin_copysignf(x, y))
EMU_F2(step, y < x ? 0.0f : 1.0f)

#define EMU_F3(name, expr)                                                              \
	inline float name(float x, float y, float z) { return expr; }                       \
	template <int N>                                                                    \
	inline vec<float, N> name(vec<float, N> a, vec<float, N> b, vec<float, N> c) {      \
		for (int i = 0; i < N; i++) a[i] = name(a[i], b[i], c[i]);                      \
		return a;                                                                       \
	}
EMU_F3(fma, __builtin_fmaf(x, y, z))
EMU_F3(mad, x * y + z)
EMU_F3(clamp, __builtin_fminf(__builtin_fmaxf(x, y), z))
EMU_F3(mix, x + (y - x) * z)
template <int N>
inline vec<float, N> clamp(vec<float, N> a, float lo, float hi) {
	for (int i = 0; i < N; i++) a[i] = clamp(a[i], lo, hi);
	return a;
}
template <int N>
inline vec<float, N> mix(vec<float, N> a, vec<float, N> b, float t) {
	for (int i = 0; i < N; i++) a[i] = mix(a[i], b[i], t);
	return a;
}

inline bool isnan(float x) { return __builtin_isnan(x); }
inline bool isinf(float x) { return __builtin_isinf(x); }
inline bool isfinite(float x) { return __builtin_isfinite(x); }
inline bool signbit(float x) { return __builtin_signbit(x); }

template <int N>
inline float dot(vec<float, N> a, vec<float, N> b) {
	float s = 0.0f;
	for (int i = 0; i < N; i++) s += a[i] * b[i];
	return s;
}
template <int N>
inline float length(vec<float, N> a) { return sqrt(dot(a, a)); }

// Integer min, max, clamp, abs.
#define EMU_INT(T)                                                                        \
	inline T min(T a, T b) { return a < b ? a : b; }                                      \
	inline T max(T a, T b) { return a < b ? b : a; }                                      \
	inline T clamp(T x, T lo, T hi) { return min(max(x, lo), hi); }                      \
	template <int N>                                                                      \
	inline vec<T, N> min(vec<T, N> a, vec<T, N> b) {                                      \
		for (int i = 0; i < N; i++) a[i] = min(a[i], b[i]);                               \
		return a;                                                                         \
	}                                                                                     \
	template <int N>                                                                      \
	inline vec<T, N> max(vec<T, N> a, vec<T, N> b) {                                      \
		for (int i = 0; i < N; i++) a[i] = max(a[i], b[i]);                               \
		return a;                                                                         \
	}                                                                                     \
	template <int N>                                                                      \
	inline vec<T, N> clamp(vec<T, N> a, vec<T, N> lo, vec<T, N> hi) {                     \
		for (int i = 0; i < N; i++) a[i] = clamp(a[i], lo[i], hi[i]);                     \
		return a;                                                                         \
	}
EMU_INT(int)
EMU_INT(uint)
EMU_INT(short)
EMU_INT(ushort)
EMU_INT(long)
EMU_INT(ulong)
inline int abs(int x) { return x < 0 ? -x : x; }
inline uint popcount(uint x) { return (uint)__builtin_popcount(x); }

// Metal's fast math is approximate; the emulator computes every function precisely, so tests
// compare with tolerances that hold on both.
namespace precise {
using metal::cos;
using metal::exp;
using metal::exp2;
using metal::fma;
using metal::log;
using metal::log2;
using metal::pow;
using metal::powr;
using metal::rsqrt;
using metal::sin;
using metal::sqrt;
using metal::tan;
using metal::tanh;
}  // namespace precise
namespace fast {
using metal::cos;
using metal::exp;
using metal::exp2;
using metal::log;
using metal::log2;
using metal::pow;
using metal::powr;
using metal::rsqrt;
using metal::sin;
using metal::sqrt;
using metal::tan;
using metal::tanh;
}  // namespace fast

}  // namespace metal

// ---- atomics ----

enum memory_order { memory_order_relaxed };

template <class T>
struct atomic {
	T v;
};
typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<float> atomic_float;
typedef atomic<bool> atomic_bool;

// Threadgroups run in parallel on OS threads, so device atomics are real atomics.
#define EMU_ATOMIC_INT(T)                                                                            \
	inline T atomic_load_explicit(const volatile atomic<T>* p, memory_order) {                       \
		return __atomic_load_n(&p->v, __ATOMIC_RELAXED);                                             \
	}                                                                                                \
	inline void atomic_store_explicit(volatile atomic<T>* p, T x, memory_order) {                    \
		__atomic_store_n(&p->v, x, __ATOMIC_RELAXED);                                                \
	}                                                                                                \
	inline T atomic_exchange_explicit(volatile atomic<T>* p, T x, memory_order) {                    \
		return __atomic_exchange_n(&p->v, x, __ATOMIC_RELAXED);                                      \
	}                                                                                                \
	inline T atomic_fetch_add_explicit(volatile atomic<T>* p, T x, memory_order) {                   \
		return __atomic_fetch_add(&p->v, x, __ATOMIC_RELAXED);                                       \
	}                                                                                                \
	inline T atomic_fetch_sub_explicit(volatile atomic<T>* p, T x, memory_order) {                   \
		return __atomic_fetch_sub(&p->v, x, __ATOMIC_RELAXED);                                       \
	}                                                                                                \
	inline T atomic_fetch_and_explicit(volatile atomic<T>* p, T x, memory_order) {                   \
		return __atomic_fetch_and(&p->v, x, __ATOMIC_RELAXED);                                       \
	}                                                                                                \
	inline T atomic_fetch_or_explicit(volatile atomic<T>* p, T x, memory_order) {                    \
		return __atomic_fetch_or(&p->v, x, __ATOMIC_RELAXED);                                        \
	}                                                                                                \
	inline T atomic_fetch_xor_explicit(volatile atomic<T>* p, T x, memory_order) {                   \
		return __atomic_fetch_xor(&p->v, x, __ATOMIC_RELAXED);                                       \
	}                                                                                                \
	inline T atomic_fetch_max_explicit(volatile atomic<T>* p, T x, memory_order) {                   \
		T old = __atomic_load_n(&p->v, __ATOMIC_RELAXED);                                            \
		while (old < x && !__atomic_compare_exchange_n(&p->v, &old, x, true, __ATOMIC_RELAXED,       \
		                                               __ATOMIC_RELAXED)) {                          \
		}                                                                                            \
		return old;                                                                                  \
	}                                                                                                \
	inline T atomic_fetch_min_explicit(volatile atomic<T>* p, T x, memory_order) {                   \
		T old = __atomic_load_n(&p->v, __ATOMIC_RELAXED);                                            \
		while (x < old && !__atomic_compare_exchange_n(&p->v, &old, x, true, __ATOMIC_RELAXED,       \
		                                               __ATOMIC_RELAXED)) {                          \
		}                                                                                            \
		return old;                                                                                  \
	}                                                                                                \
	inline bool atomic_compare_exchange_weak_explicit(volatile atomic<T>* p, T* expected, T desired, \
	                                                  memory_order, memory_order) {                  \
		return __atomic_compare_exchange_n(&p->v, expected, desired, true, __ATOMIC_RELAXED,         \
		                                   __ATOMIC_RELAXED);                                        \
	}
EMU_ATOMIC_INT(int)
EMU_ATOMIC_INT(uint)

inline float atomic_load_explicit(const volatile atomic<float>* p, memory_order) {
	uint u = __atomic_load_n((const volatile uint*)&p->v, __ATOMIC_RELAXED);
	return metal::as_type<float>(u);
}
inline void atomic_store_explicit(volatile atomic<float>* p, float x, memory_order) {
	__atomic_store_n((volatile uint*)&p->v, metal::as_type<uint>(x), __ATOMIC_RELAXED);
}
inline float atomic_exchange_explicit(volatile atomic<float>* p, float x, memory_order) {
	return metal::as_type<float>(
	    __atomic_exchange_n((volatile uint*)&p->v, metal::as_type<uint>(x), __ATOMIC_RELAXED));
}
inline float atomic_fetch_add_explicit(volatile atomic<float>* p, float x, memory_order) {
	volatile uint* q = (volatile uint*)&p->v;
	uint old = __atomic_load_n(q, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(q, &old, metal::as_type<uint>(metal::as_type<float>(old) + x),
	                                    true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
	}
	return metal::as_type<float>(old);
}
inline float atomic_fetch_sub_explicit(volatile atomic<float>* p, float x, memory_order o) {
	return atomic_fetch_add_explicit(p, -x, o);
}
inline bool atomic_compare_exchange_weak_explicit(volatile atomic<float>* p, float* expected,
                                                  float desired, memory_order, memory_order) {
	uint e = metal::as_type<uint>(*expected);
	bool ok = __atomic_compare_exchange_n((volatile uint*)&p->v, &e, metal::as_type<uint>(desired),
	                                      true, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	*expected = metal::as_type<float>(e);
	return ok;
}

// ---- synchronisation: barriers and simd-group functions ----

enum class mem_flags : unsigned {
	mem_none = 0,
	mem_device = 1,
	mem_threadgroup = 2,
	mem_texture = 4,
	mem_threadgroup_imageblock = 8,
	mem_object_data = 16,
};
inline mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags((unsigned)a | (unsigned)b); }

// EMU_TLS is how threadgroup memory and the per-thread state below are stored. The
// initial-exec model makes every access a plain %fs-relative load: with cgo's -fPIC the default
// model calls __tls_get_addr, and each such call forces live float values out to memory.
#define EMU_TLS static thread_local __attribute__((tls_model("initial-exec")))

// Threadgroup memory starts as garbage on the GPU; here it would silently keep the previous
// group's values (static thread_local), so the first thread of each group to reach a
// threadgroup declaration fills it with 0xFF bytes (NaN as float, 0xFFFFFFFF as uint): a kernel
// that reads threadgroup memory before writing it shows NaNs instead of passing by luck.
EMU_TLS uint64_t emu_cur_epoch;
template <class T>
inline void emu_tg_fresh(T& mem, uint64_t& seen) {
	if (seen != emu_cur_epoch) {
		seen = emu_cur_epoch;
		__builtin_memset((void*)&mem, 0xFF, sizeof mem);
	}
}

// The fiber running on this OS thread, set by each kernel wrapper on entry and restored after
// every park (other fibers of the group ran meanwhile). One copy per translation unit is fine:
// all fibers of a group run the same kernel.
EMU_TLS emu_lane* emu_cur_lane;

// emu_park suspends the calling fiber (see emu_lane.park). A trampoline that kept vector
// registers live across it (the C convention on x86-64 has no callee-saved ones) was tried and
// measured slower: the switch itself, not spilled floats, dominates barrier-heavy kernels.
inline void emu_park(emu_lane* me, int kind, const char* file, int line) { me->park(me, kind, file, line); }

extern "C" int dprintf(int, const char*, ...);
[[noreturn]] inline void emu_unclassified(const char* what, const char* file, int line) {
	// A kernel the generator judged unable to block reached a blocking call (hidden in a way
	// the token scan missed): fail loudly rather than run it wrongly.
	dprintf(2, "latentad msl-emulator: %s at %s:%d in a kernel classified as non-blocking; "
	                 "name the call directly in the kernel or a helper and rerun go generate ./metal/emu/\n",
	                 what, file, line);
	__builtin_abort();
}

inline void threadgroup_barrier(mem_flags = mem_flags::mem_none, const char* file = __builtin_FILE(),
                                int line = __builtin_LINE()) {
	emu_lane* me = emu_cur_lane;
	if (!me) emu_unclassified("threadgroup_barrier", file, line);
	emu_park(me, EMU_PARK_BARRIER, file, line);
	emu_cur_lane = me;
}

// emu_exchange publishes v for the simdgroup, waits for the lanes at the same call, and returns
// the calling lane, whose view[] then holds every participating lane's value.
template <class T>
inline emu_lane* emu_exchange(const T& v, const char* file, int line) {
	static_assert(sizeof(T) <= EMU_SLOT, "simd-group function argument too large for the emulator");
	emu_lane* me = emu_cur_lane;
	if (!me) emu_unclassified("a simd-group function", file, line);
	unsigned char* s = me->slots[me->parity];
	me->parity ^= 1;
	__builtin_memcpy(s, &v, sizeof(T));
	me->pub = s;
	emu_park(me, EMU_PARK_SIMD, file, line);
	emu_cur_lane = me;
	return me;
}
template <class T>
inline T emu_get(const emu_lane* me, uint j) {
	T r;
	__builtin_memcpy(&r, me->view[j], sizeof(T));
	return r;
}

#define EMU_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()

inline void simdgroup_barrier(mem_flags = mem_flags::mem_none, EMU_SITE) {
	emu_exchange(0, file, line);
}

namespace metal {

template <class T>
inline T simd_shuffle(T v, ushort src, EMU_SITE) {
	emu_lane* me = emu_exchange(v, file, line);
	return src < EMU_SIMD_WIDTH && me->view[src] ? emu_get<T>(me, src) : v;
}
template <class T>
inline T simd_broadcast(T v, ushort src, EMU_SITE) { return simd_shuffle(v, src, file, line); }
template <class T>
inline T simd_shuffle_down(T v, ushort delta, EMU_SITE) {
	emu_lane* me = emu_exchange(v, file, line);
	uint j = me->lane + delta;  // lanes past the end keep their own value, as on the GPU
	return j < EMU_SIMD_WIDTH && me->view[j] ? emu_get<T>(me, j) : v;
}
template <class T>
inline T simd_shuffle_up(T v, ushort delta, EMU_SITE) {
	emu_lane* me = emu_exchange(v, file, line);
	uint j = me->lane - delta;
	return delta <= me->lane && me->view[j] ? emu_get<T>(me, j) : v;
}
template <class T>
inline T simd_shuffle_xor(T v, ushort mask, EMU_SITE) {
	emu_lane* me = emu_exchange(v, file, line);
	uint j = me->lane ^ mask;
	return j < EMU_SIMD_WIDTH && me->view[j] ? emu_get<T>(me, j) : v;
}
template <class T>
inline T simd_broadcast_first(T v, EMU_SITE) {
	emu_lane* me = emu_exchange(v, file, line);
	return emu_get<T>(me, (uint)__builtin_ctz(me->active));
}
inline bool simd_is_first(EMU_SITE) {
	emu_lane* me = emu_exchange(0, file, line);
	return me->lane == (uint)__builtin_ctz(me->active);
}

// Reductions combine the participating lanes in lane order.
#define EMU_SIMD_REDUCE(name, init, combine)                           \
	template <class T>                                                 \
	inline T name(T v, EMU_SITE) {                                     \
		emu_lane* me = emu_exchange(v, file, line);                    \
		T acc = init;                                                  \
		bool first = true;                                             \
		for (uint j = 0; j < EMU_SIMD_WIDTH; j++) {                    \
			if (!me->view[j]) continue;                                \
			T x = emu_get<T>(me, j);                                   \
			acc = first ? x : combine;                                 \
			first = false;                                             \
		}                                                              \
		return acc;                                                    \
	}
EMU_SIMD_REDUCE(simd_sum, v, acc + x)
EMU_SIMD_REDUCE(simd_product, v, acc * x)
EMU_SIMD_REDUCE(simd_max, v, max(acc, x))
EMU_SIMD_REDUCE(simd_min, v, min(acc, x))
EMU_SIMD_REDUCE(simd_and, v, acc & x)
EMU_SIMD_REDUCE(simd_or, v, acc | x)
EMU_SIMD_REDUCE(simd_xor, v, acc ^ x)

template <class T>
inline T simd_prefix_exclusive_sum(T v, EMU_SITE) {
	emu_lane* me = emu_exchange(v, file, line);
	T acc = T(0);
	for (uint j = 0; j < me->lane; j++)
		if (me->view[j]) acc = acc + emu_get<T>(me, j);
	return acc;
}
template <class T>
inline T simd_prefix_inclusive_sum(T v, EMU_SITE) {
	emu_lane* me = emu_exchange(v, file, line);
	T acc = T(0);
	for (uint j = 0; j <= me->lane; j++)
		if (me->view[j]) acc = acc + emu_get<T>(me, j);
	return acc;
}
inline bool simd_all(bool b, EMU_SITE) {
	emu_lane* me = emu_exchange(b, file, line);
	for (uint j = 0; j < EMU_SIMD_WIDTH; j++)
		if (me->view[j] && !emu_get<bool>(me, j)) return false;
	return true;
}
inline bool simd_any(bool b, EMU_SITE) {
	emu_lane* me = emu_exchange(b, file, line);
	for (uint j = 0; j < EMU_SIMD_WIDTH; j++)
		if (me->view[j] && emu_get<bool>(me, j)) return true;
	return false;
}

// ---- simdgroup_matrix: every lane holds the whole matrix and computes it redundantly ----

template <class T, int Cols, int Rows>
struct simdgroup_matrix {
	T m[Rows][Cols];  // m[row][col]
	simdgroup_matrix() = default;
	// As in MSL, constructing from a value makes a diagonal matrix.
	explicit simdgroup_matrix(T d) {
		for (int r = 0; r < Rows; r++)
			for (int c = 0; c < Cols; c++) m[r][c] = r == c ? d : T(0);
	}
};
typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;

template <class T, int Cols, int Rows>
inline simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T v) {
	simdgroup_matrix<T, Cols, Rows> a;
	for (int r = 0; r < Rows; r++)
		for (int c = 0; c < Cols; c++) a.m[r][c] = v;
	return a;
}

// origin is (column, row) of the matrix's first element in the source; with transpose the
// source holds the matrix transposed (source row = matrix column).
template <class T, int Cols, int Rows>
inline void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, const T* src, ulong elements_per_row = Cols,
                           ulong2 origin = ulong2(0), bool transpose = false) {
	src += origin.y * elements_per_row + origin.x;
	for (int r = 0; r < Rows; r++)
		for (int c = 0; c < Cols; c++)
			d.m[r][c] = transpose ? src[c * elements_per_row + r] : src[r * elements_per_row + c];
}
template <class T, int Cols, int Rows>
inline void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, T* dst, ulong elements_per_row = Cols,
                            ulong2 origin = ulong2(0), bool transpose = false) {
	dst += origin.y * elements_per_row + origin.x;
	for (int r = 0; r < Rows; r++)
		for (int c = 0; c < Cols; c++) {
			if (transpose)
				dst[c * elements_per_row + r] = a.m[r][c];
			else
				dst[r * elements_per_row + c] = a.m[r][c];
		}
}
// d = a·b + c
template <class T, int Cols, int Rows, int K>
inline void simdgroup_multiply_accumulate(simdgroup_matrix<T, Cols, Rows>& d,
                                          const simdgroup_matrix<T, K, Rows>& a,
                                          const simdgroup_matrix<T, Cols, K>& b,
                                          const simdgroup_matrix<T, Cols, Rows>& c) {
	simdgroup_matrix<T, Cols, Rows> r;
	for (int i = 0; i < Rows; i++) {
		for (int j = 0; j < Cols; j++) r.m[i][j] = c.m[i][j];
		for (int k = 0; k < K; k++)
			for (int j = 0; j < Cols; j++) r.m[i][j] = fma(a.m[i][k], b.m[k][j], r.m[i][j]);
	}
	d = r;
}
#if defined(__x86_64__) && defined(__FMA__) && defined(__AVX__)
// The same fused operations in the same order as the template, eight columns at a time: every
// lane repeats the whole product, so this is where simdgroup_matrix kernels spend their time.
inline void simdgroup_multiply_accumulate(simdgroup_float8x8& d, const simdgroup_float8x8& a,
                                          const simdgroup_float8x8& b, const simdgroup_float8x8& c) {
	typedef float v8 __attribute__((vector_size(32)));
	v8 bv[8], r[8];
	__builtin_memcpy(bv, b.m, sizeof bv);
	__builtin_memcpy(r, c.m, sizeof r);
	for (int i = 0; i < 8; i++)
		for (int k = 0; k < 8; k++) {
			float s = a.m[i][k];
			v8 sv = {s, s, s, s, s, s, s, s};
			r[i] = __builtin_ia32_vfmaddps256(sv, bv[k], r[i]);
		}
	__builtin_memcpy(d.m, r, sizeof r);
}
#endif
template <class T, int Cols, int Rows, int K>
inline void simdgroup_multiply(simdgroup_matrix<T, Cols, Rows>& d, const simdgroup_matrix<T, K, Rows>& a,
                               const simdgroup_matrix<T, Cols, K>& b) {
	simdgroup_multiply_accumulate(d, a, b, make_filled_simdgroup_matrix<T, Cols, Rows>(T(0)));
}

}  // namespace metal

// MSL also names all of these with metal:: in front.
namespace metal {
using ::half;
using ::uint;
using ::ushort;
using ::uchar;
using ::ulong;
using ::float2;
using ::float3;
using ::float4;
using ::int2;
using ::int3;
using ::int4;
using ::uint2;
using ::uint3;
using ::uint4;
using ::short2;
using ::short3;
using ::short4;
using ::ushort2;
using ::ushort3;
using ::ushort4;
using ::char2;
using ::char3;
using ::char4;
using ::uchar2;
using ::uchar3;
using ::uchar4;
using ::long2;
using ::long3;
using ::long4;
using ::ulong2;
using ::ulong3;
using ::ulong4;
using ::bool2;
using ::bool3;
using ::bool4;
using ::mem_flags;
using ::memory_order;
using ::memory_order_relaxed;
using ::atomic;
using ::atomic_int;
using ::atomic_uint;
using ::atomic_float;
using ::atomic_bool;
using ::threadgroup_barrier;
using ::simdgroup_barrier;
using ::atomic_load_explicit;
using ::atomic_store_explicit;
using ::atomic_exchange_explicit;
using ::atomic_fetch_add_explicit;
using ::atomic_fetch_sub_explicit;
using ::atomic_fetch_and_explicit;
using ::atomic_fetch_or_explicit;
using ::atomic_fetch_xor_explicit;
using ::atomic_fetch_max_explicit;
using ::atomic_fetch_min_explicit;
using ::atomic_compare_exchange_weak_explicit;
}  // namespace metal

// ---- glue used by generated wrappers ----

// emu_bi converts a 3-component built-in to the type the kernel declared.
template <class T>
struct emu_bi_conv {
	static T get(emu_u3 v) { return T(v.x); }
};
template <class E>
struct emu_bi_conv<vec<E, 2>> {
	static vec<E, 2> get(emu_u3 v) { return vec<E, 2>(E(v.x), E(v.y)); }
};
template <class E>
struct emu_bi_conv<vec<E, 3>> {
	static vec<E, 3> get(emu_u3 v) { return vec<E, 3>(E(v.x), E(v.y), E(v.z)); }
};
template <class T>
inline T emu_bi(emu_u3 v) { return emu_bi_conv<T>::get(v); }

// emu_plain runs one threadgroup of a kernel that cannot block as a loop over its threads.
template <emu_thread_fn F>
void emu_plain(void* const* b, const emu_group* g) {
	emu_ids id;
	id.tgpig = g->group;
	id.tgpg = g->groups;
	id.ttpg = g->threads;
	id.tpg = emu_u3{g->groups.x * g->threads.x, g->groups.y * g->threads.y, g->groups.z * g->threads.z};
	id.tpsg = EMU_SIMD_WIDTH;
	id.lane = nullptr;
	id.epoch = g->epoch;
	const uint nx = g->threads.x, ny = g->threads.y, nz = g->threads.z;
	const uint bx = g->group.x * nx, by = g->group.y * ny, bz = g->group.z * nz;
	if (!g->order) {
		uint lin = 0;
		for (uint z = 0; z < nz; z++)
			for (uint y = 0; y < ny; y++)
				for (uint x = 0; x < nx; x++, lin++) {
					id.tptg = emu_u3{x, y, z};
					id.tpig = emu_u3{bx + x, by + y, bz + z};
					id.tiitg = lin;
					id.tiisg = lin % EMU_SIMD_WIDTH;
					id.sgitg = lin / EMU_SIMD_WIDTH;
					F(b, &id);
				}
		return;
	}
	const uint n = nx * ny * nz;
	for (uint i = 0; i < n; i++) {
		uint lin = g->order[i];
		uint x = lin % nx, y = (lin / nx) % ny, z = lin / (nx * ny);
		id.tptg = emu_u3{x, y, z};
		id.tpig = emu_u3{bx + x, by + y, bz + z};
		id.tiitg = lin;
		id.tiisg = lin % EMU_SIMD_WIDTH;
		id.sgitg = lin / EMU_SIMD_WIDTH;
		F(b, &id);
	}
}

#endif
