/* emu_abi.h: the C interface between the emulator runtime (runtime.cpp, package metal/emu),
 * the generated kernel translation units (packages under metal/emu/kernels and
 * metal/emu/internal/testkernels) and cgo. Plain C so cgo can read it. Changing it means
 * regenerating every kernel package (go generate ./metal/emu/). */
#ifndef LATENTAD_EMU_ABI_H
#define LATENTAD_EMU_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMU_SIMD_WIDTH 32
/* Bytes one lane can publish in a simd-group function (a float4 or uint4 and then some). */
#define EMU_SLOT 64

typedef struct emu_u3 {
	uint32_t x, y, z;
} emu_u3;

typedef struct emu_lane emu_lane;

/* Why a fiber parks. */
enum { EMU_PARK_BARRIER = 1, EMU_PARK_SIMD = 2 };

/* emu_lane is one thread of a threadgroup running as a fiber (blocking kernels only). */
struct emu_lane {
	/* park suspends the calling fiber until the barrier or simd-group call it waits at is
	 * released; file and line name the call site (the .metal line). */
	void (*park)(emu_lane* self, int kind, const char* file, int line);
	/* view[j] is what lane j published for the simd call just released, NULL when lane j
	 * did not take part (absent, returned, or on another path). Written by the runtime. */
	unsigned char* const* view;
	unsigned char* pub;     /* the slot this lane published into for the current simd call */
	uint32_t active;        /* lanes that took part in the last released simd call */
	uint32_t lane;          /* index in the simdgroup */
	uint32_t parity;        /* which of slots[] the next simd call publishes into */
	uint32_t pad_;
	unsigned char slots[2][EMU_SLOT] __attribute__((aligned(16)));
};

/* emu_ids are the built-in thread attributes of one thread. */
typedef struct emu_ids {
	emu_u3 tpig;    /* thread_position_in_grid */
	emu_u3 tptg;    /* thread_position_in_threadgroup */
	emu_u3 tgpig;   /* threadgroup_position_in_grid */
	emu_u3 ttpg;    /* threads_per_threadgroup */
	emu_u3 tgpg;    /* threadgroups_per_grid */
	emu_u3 tpg;     /* threads_per_grid */
	uint32_t tiitg; /* thread_index_in_threadgroup */
	uint32_t tiisg; /* thread_index_in_simdgroup */
	uint32_t sgitg; /* simdgroup_index_in_threadgroup */
	uint32_t tpsg;  /* threads_per_simdgroup */
	emu_lane* lane; /* NULL when the kernel runs as a plain loop */
	uint64_t epoch; /* distinct for every threadgroup run on this OS thread */
} emu_ids;

/* emu_group describes one threadgroup for a plain-loop run. */
typedef struct emu_group {
	emu_u3 group;          /* threadgroup_position_in_grid */
	emu_u3 groups;         /* threadgroups_per_grid */
	emu_u3 threads;        /* threads_per_threadgroup */
	const uint32_t* order; /* thread visiting order (linear indices), NULL for 0,1,2,… */
	uint64_t epoch;        /* as emu_ids.epoch */
} emu_group;

typedef void (*emu_thread_fn)(void* const* bufs, const emu_ids* id);
typedef void (*emu_plain_fn)(void* const* bufs, const emu_group* g);

/* emu_kernel is one entry of a generated registry. */
typedef struct emu_kernel {
	const char* name;
	emu_thread_fn thread; /* runs one thread */
	emu_plain_fn plain;   /* runs a whole threadgroup as a loop (non-blocking kernels) */
	int32_t nbuf;         /* highest [[buffer(i)]] + 1 */
	int32_t args_size;    /* sizeof the buffer(0) struct, -1 when there is none */
	int32_t blocking;     /* can reach a barrier or a simd-group function */
	int32_t line;         /* where the kernel is defined */
	const char* file;
	int32_t max_threads;  /* [[max_total_threads_per_threadgroup(n)]], 0 when not given */
} emu_kernel;

typedef struct emu_table {
	const emu_kernel* kernels;
	int32_t n;
} emu_table;

/* emu_dispatch describes one dispatch for the runtime (runtime.cpp). */
enum { EMU_ORDER_FORWARD = 0, EMU_ORDER_REVERSE = 1, EMU_ORDER_SHUFFLE = 2 };
typedef struct emu_dispatch {
	emu_u3 groups;
	emu_u3 threads;
	int32_t order;
	int32_t pad_;
	uint64_t seed;
} emu_dispatch;

#ifdef __cplusplus
}
#endif

#endif
