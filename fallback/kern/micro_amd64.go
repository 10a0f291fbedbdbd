//go:build !purego

package kern

import (
	"fmt"
	"os"

	"golang.org/x/sys/cpu"
)

// hasAVX2 and hasAVX512 say which assembly sets this CPU runs. LATENTAD_CPU (see
// capSets) can only lower them, so one machine tests every set and a user can rule one out.
var hasAVX2, hasAVX512 = cpuSets()

func cpuSets() (avx2, avx512 bool) {
	v := os.Getenv("LATENTAD_CPU")
	avx2, avx512, ok := capSets(v, cpuHasAVX2(), cpuHasAVX2() && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL)
	if !ok {
		// A typo must not crash a run: say so once and keep the CPU's best.
		fmt.Fprintf(os.Stderr, "latentad: LATENTAD_CPU=%q is not one of avx512, avx2, go; using the CPU's best set\n", v)
	}
	return avx2, avx512
}

func cpuHasAVX2() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA }

// capSets applies LATENTAD_CPU: "avx512" (the default: the best the CPU has), "avx2"
// (no AVX-512) or "go" (no assembly, as -tags purego). A set the CPU lacks is never
// enabled; ok is false for an unknown value, which changes nothing.
func capSets(v string, avx2, avx512 bool) (bool, bool, bool) {
	switch v {
	case "", "avx512":
		return avx2, avx512, true
	case "avx2":
		return avx2, false, true
	case "go":
		return false, false, true
	}
	return avx2, avx512, false
}

var (
	avx2Kernels = kernelSet{name: "avx2", mr: len(avx2Table), nr: 16, micro: kernelAVX2, rows: packRowsAsm,
		dot: dotAVX2, dmr: 3, dnr: 4, dvec: 8, wgIn: wgInAVX2, wgDy: wgDyAVX2, wgT8: wgT8AVX, wgFilt: wgFiltGo, wgOut: wgOutAVX2, winograd: true}
	avx512Kernels = kernelSet{name: "avx512", mr: len(avx512Table), nr: 32, micro: kernelAVX512, rows: packRowsAsm,
		rows2: packRowsS2Asm, runs2: packRuns16S2Asm, direct: kernelAVX512Direct, dot: dotAVX512, dmr: 12, dnr: 2, dvec: 16,
		wgIn: wgInAVX512, wgDy: wgDyAVX512, wgT8: wgT8AVX, wgFilt: wgFiltAVX512, wgOut: wgOutAVX512, winograd: true, winogradWeight: true}
)

func bestKernels() kernelSet {
	switch {
	case hasAVX512:
		return avx512Kernels
	case hasAVX2:
		return avx2Kernels
	}
	return goKernels
}

// availableKernels lists the kernel sets this build and CPU can run.
func availableKernels() []kernelSet {
	sets := []kernelSet{goKernels}
	if hasAVX2 {
		sets = append(sets, avx2Kernels)
	}
	if hasAVX512 {
		sets = append(sets, avx512Kernels)
	}
	return sets
}

// packRowsAsm is kernelSet.rows for the assembly sets; the bounds are checked here once
// so the assembly can run unchecked.
func packRowsAsm(dst, src []float32, rs rowSet, c0, c1 int) {
	ro := rs.off
	if len(ro) == 0 {
		return
	}
	nr := len(dst) / len(ro)
	lo, hi := rs.lo, rs.hi
	_ = dst[len(ro)*nr-1]
	if lo+min(c0, c1) < 0 {
		panic("kern: negative pack offset")
	}
	if nr == 16 {
		_ = src[hi+c0+15]
		packRows16Asm(&dst[0], &src[0], &ro[0], len(ro), c0)
		return
	}
	_ = src[hi+max(c0, c1)+15]
	packRows32Asm(&dst[0], &src[0], &ro[0], len(ro), c0, c1)
}

func kernelAVX2(h, kc int, a, b, c []float32, ldc int, acc bool) {
	// One bounds check per call; the assembly reads kc·mr / kc·nr values and writes h rows.
	_ = a[kc*len(avx2Table)-1]
	_ = b[kc*16-1]
	_ = c[(h-1)*ldc+15]
	avx2Table[h-1](kc, &a[0], &b[0], &c[0], ldc, acc)
}

func kernelAVX512(h, kc int, a, b, c []float32, ldc int, acc bool) {
	_ = a[kc*len(avx512Table)-1]
	_ = b[kc*32-1]
	_ = c[(h-1)*ldc+31]
	avx512Table[h-1](kc, &a[0], &b[0], &c[0], ldc, acc)
}

func dotAVX512(kv int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	_ = a[11*lda+16*kv-1]
	_ = b[ldb+16*kv-1]
	_ = c[11*ldc+1]
	dot12x2z(kv, &a[0], lda, &b[0], ldb, &c[0], ldc)
}

func dotAVX2(kv int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	_ = a[2*lda+8*kv-1]
	_ = b[3*ldb+8*kv-1]
	_ = c[2*ldc+3]
	dot3x4y(kv, &a[0], lda, &b[0], ldb, &c[0], ldc)
}

func packRowsS2Asm(dst, src []float32, rs rowSet, c0, c1 int) bool {
	ro := rs.off
	if len(ro) == 0 {
		return true
	}
	lo, hi := rs.lo, rs.hi
	// Each run loads 32 consecutive floats (the last one unused).
	if lo+min(c0, c1) < 0 || hi+max(c0, c1)+31 >= len(src) {
		return false
	}
	_ = dst[len(ro)*32-1]
	packRows32S2Asm(&dst[0], &src[0], &ro[0], len(ro), c0, c1)
	return true
}

func kernelAVX512Direct(h, kc int, a, src []float32, ro rowSet, c0, c1 int, c []float32, ldc int, acc bool) {
	_ = a[kc*len(avx512Table)-1]
	_ = c[(h-1)*ldc+31]
	if len(ro.off) < kc || ro.lo+min(c0, c1) < 0 {
		panic("kern: bad direct B rows")
	}
	_ = src[ro.hi+max(c0, c1)+15]
	avx512DirectTable[h-1](kc, &a[0], &src[c0], &ro.off[0], c1-c0, &c[0], ldc, acc)
}

func packRuns16S2Asm(dst, src []float32, rs rowSet, c0 int) bool {
	ro := rs.off
	if len(ro) == 0 {
		return true
	}
	// Each run loads 32 consecutive floats (the last one unused).
	if rs.lo+c0 < 0 || rs.hi+c0+31 >= len(src) {
		return false
	}
	_ = dst[len(ro)*16-1]
	packRows16S2Asm(&dst[0], &src[0], &ro[0], len(ro), c0)
	return true
}

// wgInAVX512 is kernelSet.wgIn for the AVX-512 set; the bounds are checked here.
func wgInAVX512(src []float32, l, row, plane int, dst []float32, ds int) {
	_ = src[3*plane+3*row+l+wgLanes]
	_ = dst[63*ds+wgLanes-1]
	wgInAsm(&src[0], l, row, plane, &dst[0], ds)
}

// wgOutAVX512 is kernelSet.wgOut for the AVX-512 set; the bounds are checked here.
func wgOutAVX512(m []float32, ms int, bias float32, out *[64]float32) {
	_ = m[63*ms+wgLanes-1]
	wgOutAsm(&m[0], ms, bias, &out[0])
}

// wgDyAVX512 is kernelSet.wgDy for the AVX-512 set; the bounds are checked here.
func wgDyAVX512(src []float32, l, row, plane int, dst []float32, ds int) {
	_ = src[plane+row+l+wgLanes-1]
	_ = dst[63*ds+wgLanes-1]
	wgDyAsm(&src[0], l, row, plane, &dst[0], ds)
}

// wgT8AVX is kernelSet.wgT8 for the assembly sets; the bounds are checked here.
func wgT8AVX(src, dst []float32, dsig, dt int) {
	_ = src[8*512-1]
	_ = dst[63*dsig+7*dt+7]
	wgT8Asm(&src[0], &dst[0], dsig, dt)
}

// wgFiltAVX512 is kernelSet.wgFilt for the AVX-512 set; the bounds are checked here.
func wgFiltAVX512(g8 *[27 * 8]float32, dst []float32, ds int) {
	_ = dst[63*ds+7]
	wgFiltAsm(&g8[0], &dst[0], ds)
}

// wgInAVX2, wgDyAVX2 and wgOutAVX2 are the AVX2 set's transforms (16 registers; wgDyAsm
// needs no more); the bounds are checked here.
func wgInAVX2(src []float32, l, row, plane int, dst []float32, ds int) {
	_ = src[3*plane+3*row+l+wgLanes]
	_ = dst[63*ds+wgLanes-1]
	wgIn16Asm(&src[0], l, row, plane, &dst[0], ds)
}

func wgDyAVX2(src []float32, l, row, plane int, dst []float32, ds int) {
	_ = src[plane+row+l+wgLanes-1]
	_ = dst[63*ds+wgLanes-1]
	wgDyAsm(&src[0], l, row, plane, &dst[0], ds)
}

func wgOutAVX2(m []float32, ms int, bias float32, out *[64]float32) {
	_ = m[63*ms+wgLanes-1]
	wgOut16Asm(&m[0], ms, bias, &out[0])
}
