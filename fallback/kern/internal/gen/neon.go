package main

import (
	"bytes"
	"fmt"
)

// The arm64 NEON family: h×16 for h = 1…6 on the same packed panels as the AVX2 family
// (A in 6-row panels, B in 16-column panels), so the one driver serves both. Per k step
// one 16-float B load into V24…V27, then per row a broadcast load of A (LD1R) and four
// FMLAs into the accumulators V(4i)…V(4i+3): 24 accumulators at h = 6, within the 32
// vector registers. With acc the accumulators start from C (there is no vector float
// add in Go's arm64 assembler to add C afterwards), otherwise from zero.
const neonMR = 6

func generateNEON() (asmText, decl []byte) {
	var w asm
	var d bytes.Buffer
	headers(&w, &d)
	for h := 1; h <= neonMR; h++ {
		neonKernel(&w, h)
		fmt.Fprintf(&d, "\n// kern%dx16n computes a %d×16 block (NEON; see micro_arm64.s).\n//\n//go:noescape\n", h, h)
		fmt.Fprintf(&d, "func kern%dx16n(kc int, a, b, c *float32, ldc int, acc bool)\n", h)
	}
	d.WriteString("\nvar neonTable = [...]func(kc int, a, b, c *float32, ldc int, acc bool){\n")
	for h := 1; h <= neonMR; h++ {
		fmt.Fprintf(&d, "\tkern%dx16n,\n", h)
	}
	d.WriteString("}\n")
	return w.Bytes(), d.Bytes()
}

// quad names the four consecutive registers V(4i)…V(4i+3) as an LD1/ST1 list.
func quad(i int) string {
	return fmt.Sprintf("[V%d.S4, V%d.S4, V%d.S4, V%d.S4]", 4*i, 4*i+1, 4*i+2, 4*i+3)
}

func neonKernel(w *asm, h int) {
	fmt.Fprintf(w, "\n// func kern%dx16n(kc int, a, b, c *float32, ldc int, acc bool)\n", h)
	fmt.Fprintf(w, "TEXT ·kern%dx16n(SB), NOSPLIT, $0-41\n", h)
	w.ins("MOVD kc+0(FP), R0")
	w.ins("MOVD a+8(FP), R1")
	w.ins("MOVD b+16(FP), R2")
	w.ins("MOVD c+24(FP), R3")
	w.ins("MOVD ldc+32(FP), R4")
	w.ins("LSL $2, R4, R4")
	w.ins("MOVBU acc+40(FP), R5")
	w.ins("CBZ R5, zero")
	w.ins("MOVD R3, R6")
	for i := range h {
		w.ins("VLD1 (R6), %s", quad(i))
		w.ins("ADD R4, R6, R6")
	}
	w.ins("B check")
	w.label("zero")
	for i := range 4 * h {
		w.ins("VEOR V%d.B16, V%d.B16, V%d.B16", i, i, i)
	}
	w.label("check")
	w.ins("CBZ R0, store")
	w.label("loop")
	w.ins("VLD1.P 64(R2), [V24.S4, V25.S4, V26.S4, V27.S4]")
	for i := range h {
		a := 28 + i%2 // alternate broadcast registers so loads run ahead of the FMLAs
		w.ins("VLD1R.P 4(R1), [V%d.S4]", a)
		for j := range 4 {
			w.ins("VFMLA V%d.S4, V%d.S4, V%d.S4", 24+j, a, 4*i+j)
		}
	}
	if h < neonMR {
		w.ins("ADD $%d, R1, R1", 4*(neonMR-h)) // the panel's unused rows
	}
	w.ins("SUBS $1, R0, R0")
	w.ins("BNE loop")
	w.label("store")
	w.ins("MOVD R3, R6")
	for i := range h {
		w.ins("VST1 %s, (R6)", quad(i))
		w.ins("ADD R4, R6, R6")
	}
	w.ins("RET")
}
