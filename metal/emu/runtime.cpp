//go:build linux && cgo

// runtime.cpp: runs threadgroups of generated kernels. Kernels that cannot block run as a
// plain loop (emu_plain, inlined in each kernel's translation unit); kernels that can block
// run every thread of the group as a fiber on the calling OS thread, switched by a small
// assembly routine that saves only callee-saved registers (ucontext's swapcontext makes a
// signal-mask system call per switch and is 10–30× slower).

#include "emu_abi.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

extern "C" void emu_switch(void** save_sp, void* to_sp);

// emu_switch(save_sp, to_sp): push the callee-saved registers, store the stack pointer in
// *save_sp, load to_sp, pop the registers saved there and return into that context.
#if defined(__x86_64__)
asm(R"(
	.text
	.globl emu_switch
	.hidden emu_switch
	.type emu_switch,@function
	.p2align 4
emu_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size emu_switch, .-emu_switch
)");
static const int kSavedWords = 6;  // then the return address

#elif defined(__aarch64__)
asm(R"(
	.text
	.globl emu_switch
	.hidden emu_switch
	.type emu_switch,%function
	.p2align 4
emu_switch:
	sub sp, sp, #160
	stp x19, x20, [sp, #0]
	stp x21, x22, [sp, #16]
	stp x23, x24, [sp, #32]
	stp x25, x26, [sp, #48]
	stp x27, x28, [sp, #64]
	stp x29, x30, [sp, #80]
	stp d8, d9, [sp, #96]
	stp d10, d11, [sp, #112]
	stp d12, d13, [sp, #128]
	stp d14, d15, [sp, #144]
	mov x9, sp
	str x9, [x0]
	mov sp, x1
	ldp x19, x20, [sp, #0]
	ldp x21, x22, [sp, #16]
	ldp x23, x24, [sp, #32]
	ldp x25, x26, [sp, #48]
	ldp x27, x28, [sp, #64]
	ldp x29, x30, [sp, #80]
	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	add sp, sp, #160
	ret
	.size emu_switch, .-emu_switch
)");
#else
#error "the MSL emulator's fiber switch supports x86-64 and arm64 only"
#endif

namespace {

const uint32_t kMaxThreads = 1024;
const size_t kStack = 64 * 1024;  // per fiber; only touched pages are committed
const size_t kPage = 4096;

enum State { RUN, BAR, SIMD, DONE };

struct Fiber {
	emu_lane lane;  // first: park() gets the lane and casts back
	emu_ids ids;
	void* sp;
	int state;
	const char* file;
	int line;
};

struct Worker {
	Fiber* fibers = nullptr;
	unsigned char* stacks = nullptr;  // cap × (guard page + kStack)
	uint32_t cap = 0;                 // fibers (and stacks) allocated
	void* main_sp = nullptr;
	Fiber* cur = nullptr;
	const emu_kernel* k = nullptr;
	void* const* bufs = nullptr;
	uint32_t n = 0, nsg = 0, live = 0, pos = 0;
	uint64_t epoch = 0;  // counts the threadgroups run on this thread (see emu_tg_fresh)
	int mode = EMU_ORDER_FORWARD;
	uint64_t rng = 0;
	std::vector<uint32_t> order;  // fiber indices in scheduling order
	std::vector<unsigned char*> views;  // per simdgroup: 2 × EMU_SIMD_WIDTH published pointers
	std::vector<uint8_t> vpar;
	std::string err;

	~Worker() { release(); }
	void release() {
		if (stacks) munmap(stacks, cap * (kStack + kPage));
		free(fibers);
		stacks = nullptr;
		fibers = nullptr;
		cap = 0;
	}
	// reserve makes room for n fibers, growing to the largest group seen on this thread (each
	// stack's guard page is a separate mapping, so allocating all kMaxThreads up front would
	// spend the process's map-count limit on OS threads that never run big groups).
	bool reserve(uint32_t n) {
		if (n <= cap) return true;
		uint32_t c = cap ? cap : 64;
		while (c < n) c *= 2;
		if (c > kMaxThreads) c = kMaxThreads;
		release();
		size_t per = kStack + kPage;
		void* p = mmap(nullptr, c * per, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) return false;
		stacks = (unsigned char*)p;
		cap = c;
		// A guard page below each stack turns a fiber stack overflow into a crash, not corruption.
		for (uint32_t i = 0; i < c; i++) mprotect(stacks + i * per, kPage, PROT_NONE);
		fibers = (Fiber*)aligned_alloc(64, sizeof(Fiber) * c);
		return fibers != nullptr;
	}
};

thread_local Worker tw;

// Deterministic per-group shuffles (splitmix64), so a failing order can be replayed by seed.
uint64_t mix(uint64_t x) {
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void make_order(std::vector<uint32_t>& o, uint32_t n, int mode, uint64_t seed) {
	o.resize(n);
	for (uint32_t i = 0; i < n; i++) o[i] = mode == EMU_ORDER_REVERSE ? n - 1 - i : i;
	if (mode == EMU_ORDER_SHUFFLE) {
		uint64_t s = seed;
		for (uint32_t i = n; i > 1; i--) {
			s = mix(s);
			uint32_t j = (uint32_t)(s % i);
			uint32_t t = o[i - 1];
			o[i - 1] = o[j];
			o[j] = t;
		}
	}
}

Fiber* next_runnable(Worker* w) {
	for (uint32_t c = 0; c < w->n; c++) {
		uint32_t p = w->pos + c;
		if (p >= w->n) p -= w->n;
		Fiber* f = &w->fibers[w->order[p]];
		if (f->state == RUN) {
			w->pos = p + 1 == w->n ? 0 : p + 1;
			return f;
		}
	}
	return nullptr;
}

bool same_site(const Fiber* a, const Fiber* b) {
	return a->line == b->line && (a->file == b->file || strcmp(a->file, b->file) == 0);
}

std::string describe_sites(Worker* w, int state) {
	// Group threads by call site, listing index ranges: "shaders/x.metal:10 (threads 0–15)".
	std::string s;
	std::vector<bool> done(w->n, false);
	for (uint32_t i = 0; i < w->n; i++) {
		Fiber* f = &w->fibers[i];
		if (done[i] || f->state != state) continue;
		char buf[256];
		snprintf(buf, sizeof buf, "%s%s:%d (threads", s.empty() ? "" : "; ", f->file, f->line);
		s += buf;
		int64_t lo = -1, prev = -2;
		auto flush = [&]() {
			if (lo < 0) return;
			if (prev == lo)
				snprintf(buf, sizeof buf, " %lld", (long long)lo);
			else
				snprintf(buf, sizeof buf, " %lld-%lld", (long long)lo, (long long)prev);
			s += buf;
		};
		for (uint32_t j = i; j < w->n; j++) {
			Fiber* g = &w->fibers[j];
			if (g->state != state || !same_site(f, g)) continue;
			done[j] = true;
			if ((int64_t)j != prev + 1) {
				flush();
				lo = j;
			}
			prev = j;
		}
		flush();
		s += ")";
	}
	return s;
}

// resolve runs when no fiber is runnable: it releases the lanes of each simdgroup waiting at
// the same simd-group call (lanes elsewhere did not take part, as under divergence on the GPU),
// else the whole group if every live thread waits at the same barrier, else reports a deadlock.
void resolve(Worker* w) {
	if (w->live == 0) return;
	bool released = false;
	for (uint32_t sg = 0; sg < w->nsg; sg++) {
		uint32_t base = sg * EMU_SIMD_WIDTH;
		uint32_t end = base + EMU_SIMD_WIDTH < w->n ? base + EMU_SIMD_WIDTH : w->n;
		Fiber* first = nullptr;
		for (uint32_t i = base; i < end; i++)
			if (w->fibers[i].state == SIMD) {
				first = &w->fibers[i];
				break;
			}
		if (!first) continue;
		unsigned char** view = &w->views[(sg * 2 + w->vpar[sg]) * EMU_SIMD_WIDTH];
		w->vpar[sg] ^= 1;
		uint32_t mask = 0;
		for (uint32_t j = 0; j < EMU_SIMD_WIDTH; j++) {
			view[j] = nullptr;
			if (base + j >= end) continue;
			Fiber* f = &w->fibers[base + j];
			if (f->state == SIMD && same_site(f, first)) {
				view[j] = f->lane.pub;
				mask |= 1u << j;
			}
		}
		for (uint32_t j = 0; j < EMU_SIMD_WIDTH; j++) {
			if (!(mask & (1u << j))) continue;
			Fiber* f = &w->fibers[base + j];
			f->lane.view = view;
			f->lane.active = mask;
			f->state = RUN;
		}
		released = true;
	}
	if (released) {
		w->pos = 0;
		return;
	}
	Fiber* first = nullptr;
	bool same = true;
	for (uint32_t i = 0; i < w->n; i++) {
		Fiber* f = &w->fibers[i];
		if (f->state != BAR) continue;
		if (!first)
			first = f;
		else if (!same_site(f, first))
			same = false;
	}
	if (first && same) {
		for (uint32_t i = 0; i < w->n; i++)
			if (w->fibers[i].state == BAR) w->fibers[i].state = RUN;
		w->pos = 0;
		if (w->mode == EMU_ORDER_SHUFFLE) {
			// A fresh order for every phase between barriers exposes more orderings.
			w->rng = mix(w->rng);
			make_order(w->order, w->n, w->mode, w->rng);
		}
		return;
	}
	const emu_u3 g = w->fibers[0].ids.tgpig;
	char head[512];
	snprintf(head, sizeof head,
	         "kernel %s (%s:%d), threadgroup (%u,%u,%u): deadlock: threads wait at different "
	         "threadgroup_barrier calls, which hangs or misbehaves on the GPU (every thread must "
	         "reach the same barrier): ",
	         w->k->name, w->k->file, w->k->line, g.x, g.y, g.z);
	w->err = head + describe_sites(w, BAR);
}

// schedule leaves the current fiber (parked or done) for the next runnable one, or for the
// worker's own stack when the group is finished or deadlocked.
void schedule(Worker* w, Fiber* self) {
	Fiber* nx = next_runnable(w);
	if (!nx) {
		resolve(w);
		if (w->err.empty()) nx = next_runnable(w);
	}
	if (!nx) {
		w->cur = nullptr;
		emu_switch(&self->sp, w->main_sp);
		__builtin_unreachable();  // a finished or abandoned fiber is never resumed
	}
	if (nx != self) {
		w->cur = nx;
		emu_switch(&self->sp, nx->sp);
	}
}

void park(emu_lane* l, int kind, const char* file, int line) {
	Fiber* f = (Fiber*)l;
	f->state = kind == EMU_PARK_BARRIER ? BAR : SIMD;
	f->file = file;
	f->line = line;
	schedule(&tw, f);
}

extern "C" void emu_fiber_main() {
	Worker* w = &tw;
	Fiber* f = w->cur;
	w->k->thread(w->bufs, &f->ids);
	f->state = DONE;
	w->live--;
	schedule(w, f);
}

void* fresh_stack(Worker* w, uint32_t i) {
	uintptr_t top = (uintptr_t)(w->stacks + (size_t)i * (kStack + kPage) + kPage + kStack);
	top &= ~(uintptr_t)15;
#if defined(__x86_64__)
	// [top-8]: a null return address for emu_fiber_main; [top-16]: where emu_switch returns;
	// below it the callee-saved registers it pops. emu_fiber_main then starts with the stack
	// pointer ≡ 8 (mod 16), as after a call.
	uintptr_t* sp = (uintptr_t*)(top - 16);
	sp[1] = 0;
	sp[0] = (uintptr_t)&emu_fiber_main;
	sp -= kSavedWords;
	for (int r = 0; r < kSavedWords; r++) sp[r] = 0;
	return sp;
#else
	// 160 bytes of saved registers; x29 (frame pointer) = 0 ends backtraces, x30 = entry.
	uintptr_t* sp = (uintptr_t*)(top - 160);
	memset(sp, 0, 160);
	sp[11] = (uintptr_t)&emu_fiber_main;
	return sp;
#endif
}

const char* run_fibers(Worker* w, const emu_kernel* k, void* const* bufs, const emu_dispatch* d, emu_u3 group,
                       uint64_t gindex) {
	w->k = k;
	w->bufs = bufs;
	const emu_u3 t = d->threads;
	uint32_t n = t.x * t.y * t.z;
	w->n = n;
	w->nsg = (n + EMU_SIMD_WIDTH - 1) / EMU_SIMD_WIDTH;
	w->views.assign(w->nsg * 2 * EMU_SIMD_WIDTH, nullptr);
	w->vpar.assign(w->nsg, 0);
	w->mode = d->order;
	w->rng = mix(d->seed ^ gindex);
	make_order(w->order, n, d->order, w->rng);
	emu_ids base;
	base.tgpig = group;
	base.tgpg = d->groups;
	base.ttpg = t;
	base.tpg = emu_u3{d->groups.x * t.x, d->groups.y * t.y, d->groups.z * t.z};
	base.tpsg = EMU_SIMD_WIDTH;
	base.epoch = ++w->epoch;
	for (uint32_t i = 0; i < n; i++) {
		Fiber* f = &w->fibers[i];
		f->ids = base;
		uint32_t x = i % t.x, y = (i / t.x) % t.y, z = i / (t.x * t.y);
		f->ids.tptg = emu_u3{x, y, z};
		f->ids.tpig = emu_u3{group.x * t.x + x, group.y * t.y + y, group.z * t.z + z};
		f->ids.tiitg = i;
		f->ids.tiisg = i % EMU_SIMD_WIDTH;
		f->ids.sgitg = i / EMU_SIMD_WIDTH;
		f->ids.lane = &f->lane;
		f->lane.park = park;
		f->lane.view = nullptr;
		f->lane.pub = nullptr;
		f->lane.active = 0;
		f->lane.lane = i % EMU_SIMD_WIDTH;
		f->lane.parity = 0;
		f->sp = fresh_stack(w, i);
		f->state = RUN;
		f->file = "";
		f->line = 0;
	}
	w->live = n;
	w->pos = 0;
	w->err.clear();
	Fiber* first = next_runnable(w);
	w->cur = first;
	emu_switch(&w->main_sp, first->sp);
	if (!w->err.empty()) return strdup(w->err.c_str());
	return nullptr;
}

}  // namespace

extern "C" {

// emu_run runs threadgroups [g0, g1) of a dispatch (linear indices, x fastest) on the calling
// thread. It returns NULL, or a malloc'd message describing a fault (the caller frees it).
const char* emu_run(const emu_kernel* k, void* const* bufs, const emu_dispatch* d, uint64_t g0, uint64_t g1) {
	const emu_u3 gs = d->groups;
	const uint64_t total = (uint64_t)gs.x * gs.y * gs.z;
	const uint32_t n = d->threads.x * d->threads.y * d->threads.z;
	Worker* w = &tw;
	if (n > kMaxThreads) return strdup("threadgroup larger than 1024 threads");
	if (k->blocking && !w->reserve(n)) return strdup("cannot allocate fiber stacks (mmap failed)");
	std::vector<uint32_t>& order = w->order;
	for (uint64_t i = g0; i < g1; i++) {
		// Reverse and shuffle also walk the groups backwards, to expose inter-group races.
		uint64_t lin = d->order == EMU_ORDER_FORWARD ? i : total - 1 - i;
		emu_u3 g{(uint32_t)(lin % gs.x), (uint32_t)((lin / gs.x) % gs.y), (uint32_t)(lin / ((uint64_t)gs.x * gs.y))};
		if (k->blocking) {
			const char* err = run_fibers(w, k, bufs, d, g, lin);
			if (err) return err;
			continue;
		}
		emu_group eg;
		eg.group = g;
		eg.groups = gs;
		eg.threads = d->threads;
		eg.order = nullptr;
		eg.epoch = ++w->epoch;
		if (d->order != EMU_ORDER_FORWARD) {
			make_order(order, n, d->order, mix(d->seed ^ lin));
			eg.order = order.data();
		}
		k->plain(bufs, &eg);
	}
	return nullptr;
}

}  // extern "C"
