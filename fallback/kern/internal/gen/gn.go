package main

import "fmt"

// generateGN writes gn_amd64.s: GroupNorm's row kernels, the AXPY and ReLU loops of
// package kern (gn.go, axpy.go, relu.go), AVX in YMM registers. Each does the Go version's float32
// operations in the same order; the reductions run two blocks at a time so that their
// dependency chains overlap, adding each block's float64 lane sum to the total in block
// order.
func generateGN() []byte {
	var w asm
	headers(&w, nil)
	reduction(&w, "gnSumAVX", "x *float32, nb int) float64", 24, "ret+16", "", 16,
		[]string{"MOVQ x+0(FP), SI", "MOVQ nb+8(FP), CX"},
		func(j, off int, acc []int, t int) {
			w.ins("VADDPS %d(SI), Y%d, Y%d", off+32*j, acc[0], acc[0])
		})
	reduction(&w, "gnCentredSqAVX", "x *float32, nb int, m float32) float64", 32, "ret+24", "", 16,
		[]string{"MOVQ x+0(FP), SI", "MOVQ nb+8(FP), CX", "VBROADCASTSS m+16(FP), Y13"},
		func(j, off int, acc []int, t int) { // s += (x−m)²
			w.ins("VMOVUPS %d(SI), Y%d", off+32*j, t)
			w.ins("VSUBPS Y13, Y%d, Y%d", t, t)
			w.ins("VMULPS Y%d, Y%d, Y%d", t, t, t)
			w.ins("VADDPS Y%d, Y%d, Y%d", t, acc[0], acc[0])
		})
	reduction(&w, "dySumsAVX", "x, dy *float32, nb int, mu float32) (a, b float64", 48, "a+32", "b+40", 8,
		[]string{"MOVQ x+0(FP), SI", "MOVQ dy+8(FP), DI", "MOVQ nb+16(FP), CX", "VBROADCASTSS mu+24(FP), Y13"},
		func(j, off int, acc []int, t int) { // a += dy; b += dy·(x−mu)
			g := t + 2
			w.ins("VMOVUPS %d(DI), Y%d", off+32*j, g)
			w.ins("VADDPS Y%d, Y%d, Y%d", g, acc[0], acc[0])
			w.ins("VMOVUPS %d(SI), Y%d", off+32*j, t)
			w.ins("VSUBPS Y13, Y%d, Y%d", t, t)
			w.ins("VMULPS Y%d, Y%d, Y%d", t, g, t)
			w.ins("VADDPS Y%d, Y%d, Y%d", t, acc[1], acc[1])
		})
	// The maps: 32 floats per iteration, n a multiple of 32.
	vmap(&w, "affineAVX", "x, y *float32, n int, a, b float32): y = x·a + b", 32,
		[]string{"MOVQ x+0(FP), SI", "MOVQ y+8(FP), DI", "MOVQ n+16(FP), CX",
			"VBROADCASTSS a+24(FP), Y14", "VBROADCASTSS b+28(FP), Y15"}, []string{"SI", "DI"},
		func(i int) {
			w.ins("VMULPS %d(SI), Y14, Y%d", 32*i, i)
			w.ins("VADDPS Y15, Y%d, Y%d", i, i)
		})
	vmap(&w, "linAVX", "dy, x, out *float32, n int, k1, k2, k3 float32): out = (dy·k1 + x·k2) + k3", 44,
		[]string{"MOVQ dy+0(FP), SI", "MOVQ x+8(FP), BX", "MOVQ out+16(FP), DI", "MOVQ n+24(FP), CX",
			"VBROADCASTSS k1+32(FP), Y13", "VBROADCASTSS k2+36(FP), Y14", "VBROADCASTSS k3+40(FP), Y15"},
		[]string{"SI", "BX", "DI"},
		func(i int) {
			w.ins("VMULPS %d(SI), Y13, Y%d", 32*i, i)
			w.ins("VMULPS %d(BX), Y14, Y%d", 32*i, 4+i)
			w.ins("VADDPS Y%d, Y%d, Y%d", 4+i, i, i)
			w.ins("VADDPS Y15, Y%d, Y%d", i, i)
		})
	vmap(&w, "axpyAVX", "a float32, x, y *float32, n int): y += a·x", 32,
		[]string{"VBROADCASTSS a+0(FP), Y15", "MOVQ x+8(FP), SI", "MOVQ y+16(FP), DI", "MOVQ n+24(FP), CX"},
		[]string{"SI", "DI"},
		func(i int) {
			w.ins("VMULPS %d(SI), Y15, Y%d", 32*i, i)
			w.ins("VADDPS %d(DI), Y%d, Y%d", 32*i, i, i)
		})
	vmap(&w, "axpbyAVX", "a float32, x *float32, b float32, y, out *float32, n int): out = a·x + b·y", 48,
		[]string{"VBROADCASTSS a+0(FP), Y14", "MOVQ x+8(FP), SI", "VBROADCASTSS b+16(FP), Y15",
			"MOVQ y+24(FP), BX", "MOVQ out+32(FP), DI", "MOVQ n+40(FP), CX"},
		[]string{"SI", "BX", "DI"},
		func(i int) {
			w.ins("VMULPS %d(SI), Y14, Y%d", 32*i, i)
			w.ins("VMULPS %d(BX), Y15, Y%d", 32*i, 4+i)
			w.ins("VADDPS Y%d, Y%d, Y%d", 4+i, i, i)
		})
	// ReLU and its gradient (relu.go). VMAXPS returns its second source (x) when either
	// operand is NaN or both are zero, so NaN and −0 pass through unchanged; compare
	// predicate 6 (not-less-or-equal, true when unordered) passes dy where x > 0 or NaN.
	vmap(&w, "reluAVX", "x, y *float32, n int): y = max(0, x)", 24,
		[]string{"MOVQ x+0(FP), SI", "MOVQ y+8(FP), DI", "MOVQ n+16(FP), CX", "VXORPS Y4, Y4, Y4"},
		[]string{"SI", "DI"},
		func(i int) {
			w.ins("VMOVUPS %d(SI), Y%d", 32*i, i)
			w.ins("VMAXPS Y%d, Y4, Y%d", i, i)
		})
	vmap(&w, "reluBackwardAVX", "x, dy, dx *float32, n int): dx = dy where x > 0 or NaN, else +0", 32,
		[]string{"MOVQ x+0(FP), SI", "MOVQ dy+8(FP), BX", "MOVQ dx+16(FP), DI", "MOVQ n+24(FP), CX", "VXORPS Y8, Y8, Y8"},
		[]string{"SI", "BX", "DI"},
		func(i int) {
			w.ins("VMOVUPS %d(SI), Y%d", 32*i, i)
			w.ins("VCMPPS $6, Y8, Y%d, Y%d", i, i)
			w.ins("VANDPS %d(BX), Y%d, Y%d", 32*i, i, i)
		})
	return w.Bytes()
}

// lanes8 emits X(out) = ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) in float64 of the eight
// float32 lanes of Y(src), using Y(t1…t3) as scratch.
func lanes8(w *asm, src, t1, t2, t3, out int) {
	w.ins("VCVTPS2PD X%d, Y%d", src, t1)
	w.ins("VEXTRACTF128 $1, Y%d, X%d", src, t2)
	w.ins("VCVTPS2PD X%d, Y%d", t2, t2)
	w.ins("VEXTRACTF128 $1, Y%d, X%d", t1, t3)
	w.ins("VHADDPD X%d, X%d, X%d", t3, t1, t3)
	w.ins("VHADDPD X%d, X%d, X%d", t3, t3, t3)
	w.ins("VEXTRACTF128 $1, Y%d, X%d", t2, out)
	w.ins("VHADDPD X%d, X%d, X%d", out, t2, out)
	w.ins("VHADDPD X%d, X%d, X%d", out, out, out)
	w.ins("VADDSD X%d, X%d, X%d", out, t3, out)
}

// reduction emits a blocked reduction over nb blocks of vecs vectors (SI, and DI for a
// second operand, walk the blocks; CX counts them). body emits the work on vector j of a
// block at byte offset off into accumulators acc with scratch Y(t). One or two float64
// totals (in X14, X15) are returned in ret1 and ret2.
func reduction(w *asm, name, args string, frame int, ret1, ret2 string, vecs int, setup []string, body func(j, off int, acc []int, t int)) {
	fmt.Fprintf(w, "\n// func %s(%s)\n", name, args)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-%d\n", name, frame)
	for _, s := range setup {
		w.ins("%s", s)
	}
	two := ret2 != ""
	nacc := 1
	if two {
		nacc = 2
	}
	accA, accB := []int{0, 1}[:nacc], []int{2, 3}[:nacc]
	w.ins("VXORPD X14, X14, X14")
	w.ins("VXORPD X15, X15, X15")
	w.ins("CMPQ CX, $2")
	w.ins("JLT one")
	w.label("pair")
	for _, r := range append(append([]int{}, accA...), accB...) {
		w.ins("VXORPS Y%d, Y%d, Y%d", r, r, r)
	}
	for j := range vecs {
		body(j, 0, accA, 8)
		body(j, 32*vecs, accB, 9)
	}
	for _, accs := range [][]int{accA, accB} { // block order
		for k, a := range accs {
			lanes8(w, a, 4, 5, 6, 7)
			w.ins("VADDSD X7, X%d, X%d", 14+k, 14+k)
		}
	}
	w.ins("ADDQ $%d, SI", 2*32*vecs)
	if two {
		w.ins("ADDQ $%d, DI", 2*32*vecs)
	}
	w.ins("SUBQ $2, CX")
	w.ins("CMPQ CX, $2")
	w.ins("JGE pair")
	w.label("one")
	w.ins("TESTQ CX, CX")
	w.ins("JZ done")
	for _, r := range accA {
		w.ins("VXORPS Y%d, Y%d, Y%d", r, r, r)
	}
	for j := range vecs {
		body(j, 0, accA, 8)
	}
	for k, a := range accA {
		lanes8(w, a, 4, 5, 6, 7)
		w.ins("VADDSD X7, X%d, X%d", 14+k, 14+k)
	}
	w.label("done")
	w.ins("VMOVSD X14, %s(FP)", ret1)
	if two {
		w.ins("VMOVSD X15, %s(FP)", ret2)
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// vmap emits an elementwise loop over n floats (n a multiple of 32, in CX after setup):
// body computes four result vectors Y0…Y3 from the pointers ptrs (the last is the output),
// all advanced by 128 bytes an iteration.
func vmap(w *asm, name, args string, frame int, setup, ptrs []string, body func(i int)) {
	fmt.Fprintf(w, "\n// func %s(%s\n", name, args)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-%d\n", name, frame)
	for _, s := range setup {
		w.ins("%s", s)
	}
	w.ins("SHRQ $5, CX")
	w.ins("JZ done")
	w.label("loop")
	for i := range 4 {
		body(i)
	}
	out := ptrs[len(ptrs)-1]
	for i := range 4 {
		w.ins("VMOVUPS Y%d, %d(%s)", i, 32*i, out)
	}
	for _, p := range ptrs {
		w.ins("ADDQ $128, %s", p)
	}
	w.ins("DECQ CX")
	w.ins("JNZ loop")
	w.ins("VZEROUPPER")
	w.label("done")
	w.ins("RET")
}
