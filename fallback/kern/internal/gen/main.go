// Command gen writes fallback/kern's assembly: micro_amd64.s (GEMM micro-kernels and
// panel-packing helpers) and micro_decl_amd64.go (their Go declarations and dispatch
// tables), and the same for arm64 (micro_arm64.s: NEON micro-kernels, see neon.go).
// The amd64 kernel families:
//
//   - AVX2+FMA, h×16 for h = 1…6: per k step two 8-wide B loads, h broadcasts of A,
//     2h FMAs into 12 YMM accumulators at h = 6;
//   - AVX-512F, h×32 for h = 1…8: two 16-wide B loads, h broadcasts, 2h FMAs into 16
//     ZMM accumulators at h = 8 (8 rows divide the channel counts the models use, so
//     no edge kernel runs there; 12 rows measured no faster);
//   - AVX-512F dot6x4z for the weight gradient (see dotKernel);
//   - the Winograd input and output transforms (see winograd.go).
//
// Run it from fallback/kern with `go generate` (or `go run ./internal/gen`); its test
// fails when the committed files differ from what it writes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", ".", "directory of package kern")
	flag.Parse()
	asmText, decl := generate()
	if err := os.WriteFile(filepath.Join(*dir, "micro_amd64.s"), asmText, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*dir, "micro_decl_amd64.go"), decl, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*dir, "gn_amd64.s"), generateGN(), 0o644); err != nil {
		log.Fatal(err)
	}
	asmText, decl = generateNEON()
	if err := os.WriteFile(filepath.Join(*dir, "micro_arm64.s"), asmText, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*dir, "micro_decl_arm64.go"), decl, 0o644); err != nil {
		log.Fatal(err)
	}
}

type asm struct{ bytes.Buffer }

func (w *asm) ins(format string, args ...any) {
	fmt.Fprintf(w, "\t"+format+"\n", args...)
}

func (w *asm) label(name string) { fmt.Fprintf(w, "%s:\n", name) }

const unroll = 4 // k steps per main-loop iteration

// family is one micro-kernel family.
type family struct {
	suffix string // function name suffix
	mr, nr int    // packed panel shape
	reg    string // "Y" or "Z"
	vec    int    // floats per register
	zero   string // zeroing instruction
}

var families = []family{
	{suffix: "x16", mr: 6, nr: 16, reg: "Y", vec: 8, zero: "VXORPS"},
	{suffix: "x32z", mr: 8, nr: 32, reg: "Z", vec: 16, zero: "VPXORD"},
}

func generate() (asmText, decl []byte) {
	var w asm
	var d bytes.Buffer
	headers(&w, &d)
	for _, f := range families {
		for h := 1; h <= f.mr; h++ {
			kernel(&w, f, h, false)
			fmt.Fprintf(&d, "\n// kern%d%s computes a %d×%d block (see micro_amd64.s).\n//\n//go:noescape\n", h, f.suffix, h, f.nr)
			fmt.Fprintf(&d, "func kern%d%s(kc int, a, b, c *float32, ldc int, acc bool)\n", h, f.suffix)
		}
	}
	// Direct-B variants of the AVX-512 family: B row k is read in place as 16 floats at
	// src+ro[k] and 16 at src+ro[k]+d1, skipping the packing of B when A is short.
	zf := families[1]
	for h := 1; h <= zf.mr; h++ {
		kernel(&w, zf, h, true)
		fmt.Fprintf(&d, "\n// kern%d%sd computes a %d×%d block from unpacked B rows (see micro_amd64.s).\n//\n//go:noescape\n", h, zf.suffix, h, zf.nr)
		fmt.Fprintf(&d, "func kern%d%sd(kc int, a, src *float32, ro *int, d1 int, c *float32, ldc int, acc bool)\n", h, zf.suffix)
	}
	dotKernel(&w)
	fmt.Fprintf(&d, "\n// dot%dx%dz adds C[i][j] += Σ_k a[i·lda+k]·b[j·ldb+k] for i < %d, j < %d, k < 16·kv\n", dotMR, dotNR, dotMR, dotNR)
	d.WriteString("// (see micro_amd64.s); C rows are ldc floats apart.\n//\n//go:noescape\n")
	fmt.Fprintf(&d, "func dot%dx%dz(kv int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)\n", dotMR, dotNR)
	dotKernelAVX2(&w)
	fmt.Fprintf(&d, "\n// dot%dx%dy adds C[i][j] += Σ_k a[i·lda+k]·b[j·ldb+k] for i < %d, j < %d, k < 8·kv\n", dot2MR, dot2NR, dot2MR, dot2NR)
	d.WriteString("// (see micro_amd64.s); C rows are ldc floats apart.\n//\n//go:noescape\n")
	fmt.Fprintf(&d, "func dot%dx%dy(kv int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)\n", dot2MR, dot2NR)
	packRows(&w, 16)
	packRows(&w, 32)
	packRowsS2(&w)
	packRows16S2(&w)
	d.WriteString("\n// packRows16S2Asm packs, for i < n, the even floats of src+ro[i]+c0 … +31 to dst+16·i\n// (stride-2 runs of the weight gradient's rows; AVX-512).\n//\n//go:noescape\n")
	d.WriteString("func packRows16S2Asm(dst, src *float32, ro *int, n, c0 int)\n")
	d.WriteString("\n// packRows32S2Asm packs, for i < n, the even floats of src+ro[i]+c0 … +31 and of\n// src+ro[i]+c1 … +31 to dst+32·i (stride-2 convolution rows; AVX-512).\n//\n//go:noescape\n")
	d.WriteString("func packRows32S2Asm(dst, src *float32, ro *int, n, c0, c1 int)\n")
	d.WriteString("\n// packRows16Asm copies 16 floats from src+ro[i]+c0 to dst+16·i for i < n.\n//\n//go:noescape\n")
	d.WriteString("func packRows16Asm(dst, src *float32, ro *int, n, c0 int)\n")
	d.WriteString("\n// packRows32Asm copies 16 floats from src+ro[i]+c0 and 16 from src+ro[i]+c1 to\n// dst+32·i for i < n.\n//\n//go:noescape\n")
	d.WriteString("func packRows32Asm(dst, src *float32, ro *int, n, c0, c1 int)\n")
	wgIn(&w)
	wgDy(&w)
	wgOut(&w)
	wgT8(&w)
	wgFilt(&w)
	wgIn16(&w)
	wgOut16(&w)
	d.WriteString("\n// wgInAsm is wgInGo for 8 lanes in YMM registers (AVX-512VL; see micro_amd64.s).\n//\n//go:noescape\n")
	d.WriteString("func wgInAsm(src *float32, l, row, plane int, dst *float32, ds int)\n")
	d.WriteString("\n// wgDyAsm is wgDyGo for 8 lanes in YMM registers (see micro_amd64.s).\n//\n//go:noescape\n")
	d.WriteString("func wgDyAsm(src *float32, l, row, plane int, dst *float32, ds int)\n")
	d.WriteString("\n// wgT8Asm is wgT8Go (AVX; see micro_amd64.s).\n//\n//go:noescape\n")
	d.WriteString("func wgT8Asm(src, dst *float32, dsig, dt int)\n")
	d.WriteString("\n// wgFiltAsm is wgFilter for 8 filters in YMM lanes (AVX-512VL; see micro_amd64.s).\n//\n//go:noescape\n")
	d.WriteString("func wgFiltAsm(src, dst *float32, ds int)\n")
	d.WriteString("\n// wgIn16Asm is wgInGo for 8 lanes within 16 YMM registers (AVX2; see micro_amd64.s).\n//\n//go:noescape\n")
	d.WriteString("func wgIn16Asm(src *float32, l, row, plane int, dst *float32, ds int)\n")
	d.WriteString("\n// wgOut16Asm is wgOutGo for 8 lanes within 16 YMM registers (AVX2; see micro_amd64.s).\n//\n//go:noescape\n")
	d.WriteString("func wgOut16Asm(m *float32, ms int, bias float32, out *float32)\n")
	d.WriteString("\n// wgOutAsm is wgOutGo for 8 lanes in YMM registers (AVX-512VL; see micro_amd64.s).\n//\n//go:noescape\n")
	d.WriteString("func wgOutAsm(m *float32, ms int, bias float32, out *float32)\n")
	fmt.Fprintf(&d, "\nvar avx512DirectTable = [...]func(kc int, a, src *float32, ro *int, d1 int, c *float32, ldc int, acc bool){\n")
	for h := 1; h <= zf.mr; h++ {
		fmt.Fprintf(&d, "\tkern%d%sd,\n", h, zf.suffix)
	}
	d.WriteString("}\n")
	for _, f := range families {
		name := map[int]string{16: "avx2Table", 32: "avx512Table"}[f.nr]
		fmt.Fprintf(&d, "\nvar %s = [...]func(kc int, a, b, c *float32, ldc int, acc bool){\n", name)
		for h := 1; h <= f.mr; h++ {
			fmt.Fprintf(&d, "\tkern%d%s,\n", h, f.suffix)
		}
		d.WriteString("}\n")
	}
	return w.Bytes(), d.Bytes()
}

// step emits one k step at byte offsets aOff into the A panel and bOff into the B
// panel: nr/vec B loads, then per row a broadcast of A and nr/vec FMAs.
func step(w *asm, f family, h, aOff, bOff int, direct bool, u int) {
	nb := f.nr / f.vec
	acc0 := 0
	bReg := 2 * f.mr // B registers follow the accumulators
	if direct {
		// B row u of this group: offset ro[u] (BX) into src (R9) and src+d1 (R13).
		w.ins("MOVQ %d(BX), AX", 8*u)
		w.ins("VMOVUPS (R9)(AX*4), %s%d", f.reg, bReg)
		w.ins("VMOVUPS (R13)(AX*4), %s%d", f.reg, bReg+1)
	} else {
		for v := range nb {
			w.ins("VMOVUPS %d(DI), %s%d", bOff+4*f.vec*v, f.reg, bReg+v)
		}
	}
	for i := range h {
		// Rotate broadcast registers so consecutive rows do not wait on one name.
		rot := 2 // YMM: 12 accumulators, 2 B, 2 broadcast registers
		if f.reg == "Z" {
			rot = 4 // ZMM: 2·mr accumulators, 2 B, 4 broadcast registers
		}
		bc := bReg + nb + i%rot
		w.ins("VBROADCASTSS %d(SI), %s%d", aOff+4*i, f.reg, bc)
		for v := range nb {
			w.ins("VFMADD231PS %s%d, %s%d, %s%d", f.reg, bReg+v, f.reg, bc, f.reg, acc0+nb*i+v)
		}
	}
}

// kernel emits
//
//	func kern{h}{suffix}(kc int, a, b, c *float32, ldc int, acc bool)
//
// computing C[h×nr] = (acc ? C : 0) + Σ_k a[mr·k+i]·b[nr·k+j]; C rows are ldc floats apart.
func kernel(w *asm, f family, h int, direct bool) {
	name := fmt.Sprintf("kern%d%s", h, f.suffix)
	nb := f.nr / f.vec
	accArg := "acc+40(FP)"
	if direct {
		name += "d"
		accArg = "acc+56(FP)"
		fmt.Fprintf(w, "\n// func %s(kc int, a, src *float32, ro *int, d1 int, c *float32, ldc int, acc bool)\n", name)
		fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-57\n", name)
		w.ins("MOVQ kc+0(FP), CX")
		w.ins("MOVQ a+8(FP), SI")
		w.ins("MOVQ src+16(FP), R9")
		w.ins("MOVQ ro+24(FP), BX")
		w.ins("MOVQ d1+32(FP), AX")
		w.ins("LEAQ (R9)(AX*4), R13")
		w.ins("MOVQ c+40(FP), DX")
		w.ins("MOVQ ldc+48(FP), R8")
	} else {
		fmt.Fprintf(w, "\n// func %s(kc int, a, b, c *float32, ldc int, acc bool)\n", name)
		fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-41\n", name)
		w.ins("MOVQ kc+0(FP), CX")
		w.ins("MOVQ a+8(FP), SI")
		w.ins("MOVQ b+16(FP), DI")
		w.ins("MOVQ c+24(FP), DX")
		w.ins("MOVQ ldc+32(FP), R8")
	}
	w.ins("SHLQ $2, R8")
	for r := range nb * h {
		w.ins("%s %s%d, %s%d, %s%d", f.zero, f.reg, r, f.reg, r, f.reg, r)
	}
	w.ins("CMPQ CX, $%d", unroll)
	w.ins("JL tail")
	w.label("loop")
	for u := range unroll {
		step(w, f, h, u*f.mr*4, u*f.nr*4, direct, u)
	}
	w.ins("ADDQ $%d, SI", unroll*f.mr*4)
	if direct {
		w.ins("ADDQ $%d, BX", unroll*8)
	} else {
		w.ins("ADDQ $%d, DI", unroll*f.nr*4)
	}
	w.ins("SUBQ $%d, CX", unroll)
	w.ins("CMPQ CX, $%d", unroll)
	w.ins("JGE loop")
	w.label("tail")
	w.ins("TESTQ CX, CX")
	w.ins("JEQ store")
	w.label("tail1")
	step(w, f, h, 0, 0, direct, 0)
	w.ins("ADDQ $%d, SI", f.mr*4)
	if direct {
		w.ins("ADDQ $8, BX")
	} else {
		w.ins("ADDQ $%d, DI", f.nr*4)
	}
	w.ins("DECQ CX")
	w.ins("JNZ tail1")
	w.label("store")
	w.ins("MOVBLZX %s, AX", accArg)
	w.ins("TESTB AL, AL")
	w.ins("JEQ overwrite")
	for i := range h {
		for v := range nb {
			w.ins("VADDPS %d(DX), %s%d, %s%d", 4*f.vec*v, f.reg, nb*i+v, f.reg, nb*i+v)
			w.ins("VMOVUPS %s%d, %d(DX)", f.reg, nb*i+v, 4*f.vec*v)
		}
		if i < h-1 {
			w.ins("ADDQ R8, DX")
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
	w.label("overwrite")
	for i := range h {
		for v := range nb {
			w.ins("VMOVUPS %s%d, %d(DX)", f.reg, nb*i+v, 4*f.vec*v)
		}
		if i < h-1 {
			w.ins("ADDQ R8, DX")
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// Tile of the AVX-512 dot-product kernel: dotMR rows of A (kept in L1 by the caller)
// × dotNR rows of B (streamed from L2), 24 ZMM accumulators. A tall tile matters: B
// traffic from L2 is 2/dotMR bytes per FLOP, and at 6×4 it exceeded L2 bandwidth.
const dotMR, dotNR = 12, 2

// dotKernel emits
//
//	func dot12x2z(kv int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)
//
// for the weight gradient, whose reduction runs along contiguous rows of both operands:
// per 16-float step it loads 2 B vectors and 12 A vectors and does 24 FMAs, lanes
// holding partial sums; at the end the accumulators are reduced across lanes and added
// to C. Registers: Z0–Z23 accumulators (i·2+j), Z24–Z25 B, Z26–Z29 A (rotating); A rows
// 0–3, 4–7 and 8–11 are addressed from SI, R12 and R13 with lda multiples.
func dotKernel(w *asm) {
	name := fmt.Sprintf("dot%dx%dz", dotMR, dotNR)
	fmt.Fprintf(w, "\n// func %s(kv int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)\n", name)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	w.ins("MOVQ kv+0(FP), CX")
	w.ins("MOVQ a+8(FP), SI")
	w.ins("MOVQ lda+16(FP), R8")
	w.ins("SHLQ $2, R8")
	w.ins("MOVQ b+24(FP), DI")
	w.ins("MOVQ ldb+32(FP), R9")
	w.ins("SHLQ $2, R9")
	w.ins("MOVQ c+40(FP), DX")
	w.ins("MOVQ ldc+48(FP), R10")
	w.ins("SHLQ $2, R10")
	w.ins("LEAQ (R8)(R8*2), R11")  // 3·lda
	w.ins("LEAQ (SI)(R8*4), R12")  // row 4
	w.ins("LEAQ (R12)(R8*4), R13") // row 8
	for r := range dotMR * dotNR {
		w.ins("VPXORD Z%d, Z%d, Z%d", r, r, r)
	}
	w.ins("TESTQ CX, CX")
	w.ins("JEQ reduce")
	w.label("loop")
	w.ins("VMOVUPS (DI), Z24")
	w.ins("VMOVUPS (DI)(R9*1), Z25")
	bases := []string{"SI", "R12", "R13"}
	for i := range dotMR {
		base := bases[i/4]
		var addr string
		switch i % 4 {
		case 0:
			addr = "(" + base + ")"
		case 1:
			addr = "(" + base + ")(R8*1)"
		case 2:
			addr = "(" + base + ")(R8*2)"
		case 3:
			addr = "(" + base + ")(R11*1)"
		}
		reg := 26 + i%4
		w.ins("VMOVUPS %s, Z%d", addr, reg)
		w.ins("VFMADD231PS Z24, Z%d, Z%d", reg, i*dotNR)
		w.ins("VFMADD231PS Z25, Z%d, Z%d", reg, i*dotNR+1)
	}
	w.ins("ADDQ $64, SI")
	w.ins("ADDQ $64, R12")
	w.ins("ADDQ $64, R13")
	w.ins("ADDQ $64, DI")
	w.ins("DECQ CX")
	w.ins("JNZ loop")
	w.label("reduce")
	// Fold every accumulator to 256 bits; then per pair of rows (four accumulators, in
	// registers VEX can name: rows 8–11 are moved down first) three VHADDPS and a
	// 128-bit fold give [C(i,0), C(i,1), C(i+1,0), C(i+1,1)] increments.
	for r := range dotMR * dotNR {
		w.ins("VEXTRACTF64X4 $1, Z%d, Y31", r)
		w.ins("VADDPS Y31, Y%d, Y%d", r, r)
	}
	for i := 0; i < dotMR; i += 2 {
		r := i * dotNR
		if r == 16 {
			for q := range 8 {
				w.ins("VMOVAPS Y%d, Y%d", 16+q, q)
			}
		}
		if r >= 16 {
			r -= 16
		}
		w.ins("VHADDPS Y%d, Y%d, Y%d", r+1, r, r)
		w.ins("VHADDPS Y%d, Y%d, Y%d", r+3, r+2, r+2)
		w.ins("VHADDPS Y%d, Y%d, Y%d", r+2, r, r)
		w.ins("VEXTRACTF128 $1, Y%d, X%d", r, r+1)
		w.ins("VADDPS X%d, X%d, X%d", r+1, r, r)
		w.ins("VMOVSD (DX), X%d", r+1)
		w.ins("VMOVHPS (DX)(R10*1), X%d, X%d", r+1, r+1)
		w.ins("VADDPS X%d, X%d, X%d", r+1, r, r)
		w.ins("VMOVLPS X%d, (DX)", r)
		w.ins("VMOVHPS X%d, (DX)(R10*1)", r)
		if i+2 < dotMR {
			w.ins("LEAQ (DX)(R10*2), DX")
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// Tile of the AVX2 dot-product kernel: 12 YMM accumulators.
const dot2MR, dot2NR = 3, 4

// dotKernelAVX2 emits
//
//	func dot3x4y(kv int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)
//
// the AVX2 counterpart of dotKernel: per 8-float step 3 A and 4 B loads, 12 FMAs;
// registers Y0–Y11 accumulators (i·4+j), Y12–Y14 A, Y15 B. Each row's four accumulators
// are reduced together by three VHADDPS and one 128-bit fold into the four C values.
func dotKernelAVX2(w *asm) {
	name := fmt.Sprintf("dot%dx%dy", dot2MR, dot2NR)
	fmt.Fprintf(w, "\n// func %s(kv int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)\n", name)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	w.ins("MOVQ kv+0(FP), CX")
	w.ins("MOVQ a+8(FP), SI")
	w.ins("MOVQ lda+16(FP), R8")
	w.ins("SHLQ $2, R8")
	w.ins("MOVQ b+24(FP), DI")
	w.ins("MOVQ ldb+32(FP), R9")
	w.ins("SHLQ $2, R9")
	w.ins("MOVQ c+40(FP), DX")
	w.ins("MOVQ ldc+48(FP), R10")
	w.ins("SHLQ $2, R10")
	w.ins("LEAQ (R9)(R9*2), R12")
	for r := range dot2MR * dot2NR {
		w.ins("VXORPS Y%d, Y%d, Y%d", r, r, r)
	}
	w.ins("XORQ AX, AX")
	w.ins("TESTQ CX, CX")
	w.ins("JEQ reduce")
	w.label("loop")
	w.ins("LEAQ (SI)(AX*1), BX")
	w.ins("VMOVUPS (BX), Y12")
	w.ins("VMOVUPS (BX)(R8*1), Y13")
	w.ins("VMOVUPS (BX)(R8*2), Y14")
	w.ins("LEAQ (DI)(AX*1), BX")
	for j := range dot2NR {
		switch j {
		case 0:
			w.ins("VMOVUPS (BX), Y15")
		case 1:
			w.ins("VMOVUPS (BX)(R9*1), Y15")
		case 2:
			w.ins("VMOVUPS (BX)(R9*2), Y15")
		case 3:
			w.ins("VMOVUPS (BX)(R12*1), Y15")
		}
		for i := range dot2MR {
			w.ins("VFMADD231PS Y15, Y%d, Y%d", 12+i, i*dot2NR+j)
		}
	}
	w.ins("ADDQ $32, AX")
	w.ins("DECQ CX")
	w.ins("JNZ loop")
	w.label("reduce")
	for i := range dot2MR {
		r := i * dot2NR
		// hadd(x, y) = [x0+x1, x2+x3, y0+y1, y2+y3] per 128-bit lane, so two levels give
		// each row's four partial sums per lane, and the lane fold finishes them.
		w.ins("VHADDPS Y%d, Y%d, Y12", r+1, r)
		w.ins("VHADDPS Y%d, Y%d, Y13", r+3, r+2)
		w.ins("VHADDPS Y13, Y12, Y12")
		w.ins("VEXTRACTF128 $1, Y12, X13")
		w.ins("VADDPS X13, X12, X12")
		w.ins("VADDPS (DX), X12, X12")
		w.ins("VMOVUPS X12, (DX)")
		if i < dot2MR-1 {
			w.ins("ADDQ R10, DX")
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// packRowsS2 emits packRows32S2Asm: per row two runs of 16 floats taken at stride 2,
// each loaded as 32 consecutive floats and compressed with VPERMT2PS.
func packRowsS2(w *asm) {
	w.WriteString("\n// Even lane indices 0, 2, …, 30 for VPERMT2PS.\n")
	for i := range 16 {
		fmt.Fprintf(w, "DATA evenIdx<>+%d(SB)/4, $%d\n", 4*i, 2*i)
	}
	w.WriteString("GLOBL evenIdx<>(SB), RODATA|NOPTR, $64\n")
	w.WriteString("\n// func packRows32S2Asm(dst, src *float32, ro *int, n, c0, c1 int)\n")
	w.WriteString("TEXT ·packRows32S2Asm(SB), NOSPLIT, $0-48\n")
	w.ins("MOVQ dst+0(FP), DI")
	w.ins("MOVQ src+8(FP), SI")
	w.ins("MOVQ ro+16(FP), BX")
	w.ins("MOVQ n+24(FP), CX")
	w.ins("MOVQ c0+32(FP), AX")
	w.ins("LEAQ (SI)(AX*4), R9")
	w.ins("MOVQ c1+40(FP), AX")
	w.ins("LEAQ (SI)(AX*4), R10")
	w.ins("VMOVDQU32 evenIdx<>(SB), Z4")
	w.ins("TESTQ CX, CX")
	w.ins("JEQ done")
	w.label("loop")
	w.ins("MOVQ (BX), AX")
	w.ins("VMOVUPS (R9)(AX*4), Z0")
	w.ins("VMOVUPS 64(R9)(AX*4), Z1")
	w.ins("VPERMT2PS Z1, Z4, Z0")
	w.ins("VMOVUPS (R10)(AX*4), Z2")
	w.ins("VMOVUPS 64(R10)(AX*4), Z3")
	w.ins("VPERMT2PS Z3, Z4, Z2")
	w.ins("VMOVUPS Z0, (DI)")
	w.ins("VMOVUPS Z2, 64(DI)")
	w.ins("ADDQ $8, BX")
	w.ins("ADDQ $128, DI")
	w.ins("DECQ CX")
	w.ins("JNZ loop")
	w.label("done")
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// packRows16S2 emits packRows16S2Asm: per run 16 floats taken at stride 2 (evenIdx as
// in packRowsS2).
func packRows16S2(w *asm) {
	w.WriteString("\n// func packRows16S2Asm(dst, src *float32, ro *int, n, c0 int)\n")
	w.WriteString("TEXT ·packRows16S2Asm(SB), NOSPLIT, $0-40\n")
	w.ins("MOVQ dst+0(FP), DI")
	w.ins("MOVQ src+8(FP), SI")
	w.ins("MOVQ ro+16(FP), BX")
	w.ins("MOVQ n+24(FP), CX")
	w.ins("MOVQ c0+32(FP), AX")
	w.ins("LEAQ (SI)(AX*4), R9")
	w.ins("VMOVDQU32 evenIdx<>(SB), Z4")
	w.ins("TESTQ CX, CX")
	w.ins("JEQ done")
	w.label("loop")
	w.ins("MOVQ (BX), AX")
	w.ins("VMOVUPS (R9)(AX*4), Z0")
	w.ins("VMOVUPS 64(R9)(AX*4), Z1")
	w.ins("VPERMT2PS Z1, Z4, Z0")
	w.ins("VMOVUPS Z0, (DI)")
	w.ins("ADDQ $8, BX")
	w.ins("ADDQ $64, DI")
	w.ins("DECQ CX")
	w.ins("JNZ loop")
	w.label("done")
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// packRows emits packRows16Asm / packRows32Asm (B panel packing for stride-1 rows of a
// volume): per row, one or two runs of 16 consecutive floats, copied with YMM moves so
// that the AVX2 build needs nothing newer.
func packRows(w *asm, nr int) {
	name := fmt.Sprintf("packRows%dAsm", nr)
	if nr == 16 {
		fmt.Fprintf(w, "\n// func %s(dst, src *float32, ro *int, n, c0 int)\n", name)
		fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-40\n", name)
	} else {
		fmt.Fprintf(w, "\n// func %s(dst, src *float32, ro *int, n, c0, c1 int)\n", name)
		fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-48\n", name)
	}
	w.ins("MOVQ dst+0(FP), DI")
	w.ins("MOVQ src+8(FP), SI")
	w.ins("MOVQ ro+16(FP), BX")
	w.ins("MOVQ n+24(FP), CX")
	w.ins("MOVQ c0+32(FP), AX")
	w.ins("LEAQ (SI)(AX*4), R9")
	if nr == 32 {
		w.ins("MOVQ c1+40(FP), AX")
		w.ins("LEAQ (SI)(AX*4), R10")
	}
	w.ins("TESTQ CX, CX")
	w.ins("JEQ done")
	w.label("loop")
	w.ins("MOVQ (BX), AX")
	w.ins("VMOVUPS (R9)(AX*4), Y0")
	w.ins("VMOVUPS 32(R9)(AX*4), Y1")
	if nr == 32 {
		w.ins("VMOVUPS (R10)(AX*4), Y2")
		w.ins("VMOVUPS 32(R10)(AX*4), Y3")
	}
	w.ins("VMOVUPS Y0, (DI)")
	w.ins("VMOVUPS Y1, 32(DI)")
	if nr == 32 {
		w.ins("VMOVUPS Y2, 64(DI)")
		w.ins("VMOVUPS Y3, 96(DI)")
	}
	w.ins("ADDQ $8, BX")
	w.ins("ADDQ $%d, DI", 4*nr)
	w.ins("DECQ CX")
	w.ins("JNZ loop")
	w.label("done")
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// headers starts an assembly file and its Go declarations.
func headers(w *asm, d *bytes.Buffer) {
	w.WriteString("// Code generated by fallback/kern/internal/gen; DO NOT EDIT.\n\n")
	w.WriteString("//go:build !purego\n\n")
	w.WriteString("#include \"textflag.h\"\n")
	if d != nil {
		d.WriteString("// Code generated by fallback/kern/internal/gen; DO NOT EDIT.\n\n")
		d.WriteString("//go:build !purego\n\npackage kern\n")
	}
}
