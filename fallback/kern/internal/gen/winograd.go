package main

import "fmt"

// The Winograd F(2×2×2, 3×3×3) transforms of package kern (see its winograd.go) for 8
// tiles at once in YMM lanes, using all 32 vector registers (AVX-512VL encodings). They
// perform the same additions in the same order as wgInGo and wgOutGo, so their results
// are identical bit for bit. Transform values are stored at σ = (ξw·4+ξh)·4+ξd.

// y names YMM register i.
func y(i int) string { return fmt.Sprintf("Y%d", i) }

// wgIn emits wgInAsm(src *float32, l, row, plane int, dst *float32, ds int).
func wgIn(w *asm) {
	w.WriteString("\n// func wgInAsm(src *float32, l, row, plane int, dst *float32, ds int)\n")
	w.WriteString("TEXT ·wgInAsm(SB), NOSPLIT, $0-48\n")
	eBase, oBase, at := wgInSetup(w)
	for xw := range 4 {
		// Along W: T[rd·4+rh] in Y0…Y15 from E0 = E[j], E1 = E[j+1], O0, O1.
		for rd := range 4 {
			for rh := range 4 {
				t := y(rd*4 + rh)
				e0, e1 := at(eBase[rd], rh, 0), at(eBase[rd], rh, 4)
				o0, o1 := at(oBase[rd], rh, 0), at(oBase[rd], rh, 4)
				wgInW(w, xw, e0, e1, o0, o1, t)
			}
		}
		// Along H: S[rd·4+ξh] in Y16…Y31.
		for rd := range 4 {
			a := func(k int) string { return y(rd*4 + k) }
			s := func(k int) string { return y(16 + rd*4 + k) }
			bt(w, a(0), a(1), a(2), a(3), s(0), s(1), s(2), s(3))
		}
		// Along D, then the four ξd values of each ξh are consecutive in σ.
		for xh := range 4 {
			b := func(k int) string { return y(16 + k*4 + xh) }
			bt(w, b(0), b(1), b(2), b(3), y(0), y(1), y(2), y(3))
			storeSeq(w, y(0), y(1), y(2), y(3))
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// bt emits (r0, r1, r2, r3) = Bᵀ(a0, a1, a2, a3) = (a0−a2, a1+a2, a2−a1, a1−a3); the
// outputs must not overlap the inputs.
func bt(w *asm, a0, a1, a2, a3, r0, r1, r2, r3 string) {
	w.ins("VSUBPS %s, %s, %s", a2, a0, r0)
	w.ins("VADDPS %s, %s, %s", a2, a1, r1)
	w.ins("VSUBPS %s, %s, %s", a1, a2, r2)
	w.ins("VSUBPS %s, %s, %s", a3, a1, r3)
}

// wgOut emits wgOutAsm(m *float32, ms int, bias float32, out *float32).
func wgOut(w *asm) {
	w.WriteString("\n// func wgOutAsm(m *float32, ms int, bias float32, out *float32)\n")
	w.WriteString("TEXT ·wgOutAsm(SB), NOSPLIT, $0-32\n")
	w.ins("MOVQ m+0(FP), SI")
	w.ins("MOVQ ms+8(FP), R10")
	w.ins("SHLQ $2, R10")
	w.ins("MOVQ R10, R8")
	w.ins("SHLQ $4, R8") // 16·ms: ξw step
	w.ins("LEAQ (R8)(R8*2), R9")
	w.ins("VBROADCASTSS bias+16(FP), Y31")
	w.ins("MOVQ out+24(FP), DI")
	// final[c] holds the four (a, b) outputs of column parity c.
	final := [2][4]int{{24, 25, 26, 27}, {8, 9, 10, 11}}
	for c := range 2 {
		// Along W: R[ξd·4+ξh] in Y0…Y15; P walks σ = ξh·4+ξd (ξw = 0) in order.
		w.ins("MOVQ SI, BX")
		for xh := range 4 {
			for xd := range 4 {
				r := y(xd*4 + xh)
				if c == 0 { // m0 + m1 + m2
					w.ins("VMOVUPS (BX), %s", r)
					w.ins("VADDPS (BX)(R8*1), %s, %s", r, r)
					w.ins("VADDPS (BX)(R8*2), %s, %s", r, r)
				} else { // m1 - m2 - m3
					w.ins("VMOVUPS (BX)(R8*1), %s", r)
					w.ins("VSUBPS (BX)(R8*2), %s, %s", r, r)
					w.ins("VSUBPS (BX)(R9*1), %s, %s", r, r)
				}
				w.ins("ADDQ R10, BX")
			}
		}
		// Along H: H[ξd·2+b] in Y16…Y23.
		for xd := range 4 {
			at2(w, y(xd*4), y(xd*4+1), y(xd*4+2), y(xd*4+3), y(16+xd*2), y(16+xd*2+1))
		}
		// Along D, plus the bias.
		for b := range 2 {
			f0, f1 := y(final[c][0*2+b]), y(final[c][1*2+b])
			at2(w, y(16+b), y(18+b), y(20+b), y(22+b), f0, f1)
			w.ins("VADDPS Y31, %s, %s", f0, f0)
			w.ins("VADDPS Y31, %s, %s", f1, f1)
		}
	}
	// Interleave the two column parities into 16 consecutive outputs per (a, b) row.
	for i := range 4 {
		w.ins("VMOVAPS %s, Y12", y(final[0][i]))
		w.ins("VUNPCKLPS %s, Y12, Y0", y(final[1][i]))
		w.ins("VUNPCKHPS %s, Y12, Y1", y(final[1][i]))
		w.ins("VPERM2F128 $0x20, Y1, Y0, Y2")
		w.ins("VPERM2F128 $0x31, Y1, Y0, Y3")
		w.ins("VMOVUPS Y2, %d(DI)", 64*i)
		w.ins("VMOVUPS Y3, %d(DI)", 64*i+32)
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// at2 emits (r0, r1) = Aᵀ(m0, m1, m2, m3) = (m0+m1+m2, m1−m2−m3), in wgOutGo's order.
func at2(w *asm, m0, m1, m2, m3, r0, r1 string) {
	w.ins("VADDPS %s, %s, %s", m1, m0, r0)
	w.ins("VADDPS %s, %s, %s", m2, r0, r0)
	w.ins("VSUBPS %s, %s, %s", m2, m1, r1)
	w.ins("VSUBPS %s, %s, %s", m3, r1, r1)
}

// wgDy emits wgDyAsm(src *float32, l, row, plane int, dst *float32, ds int): wgDyGo.
func wgDy(w *asm) {
	w.WriteString("\n// func wgDyAsm(src *float32, l, row, plane int, dst *float32, ds int)\n")
	w.WriteString("TEXT ·wgDyAsm(SB), NOSPLIT, $0-48\n")
	w.ins("MOVQ src+0(FP), AX")
	w.ins("MOVQ l+8(FP), R8")
	w.ins("SHLQ $2, R8")
	w.ins("MOVQ row+16(FP), R9")
	w.ins("SHLQ $2, R9")
	w.ins("MOVQ plane+24(FP), R10")
	w.ins("SHLQ $2, R10")
	w.ins("LEAQ (AX)(R10*1), BX")
	w.ins("LEAQ (AX)(R8*1), CX")
	w.ins("LEAQ (BX)(R8*1), DX")
	w.ins("MOVQ dst+32(FP), DI")
	w.ins("MOVQ ds+40(FP), R11")
	w.ins("SHLQ $2, R11")
	w.ins("VXORPS Y15, Y15, Y15")
	eBase, oBase := [2]string{"AX", "BX"}, [2]string{"CX", "DX"}
	at := func(base string, zh int) string {
		if zh == 0 {
			return fmt.Sprintf("(%s)", base)
		}
		return fmt.Sprintf("(%s)(R9*1)", base)
	}
	// a emits (r0…r3) = A(v0, v1) = (v0, v0+v1, v0−v1, 0−v1); r0 is v0 itself.
	a := func(v0, v1 string, r [4]string) [4]string {
		w.ins("VADDPS %s, %s, %s", v1, v0, r[1])
		w.ins("VSUBPS %s, %s, %s", v1, v0, r[2])
		w.ins("VSUBPS %s, Y15, %s", v1, r[3])
		return [4]string{v0, r[1], r[2], r[3]}
	}
	for xw := range 4 {
		// Along W: T[zd·2+zh] in Y0…Y3 for this ξw.
		for zd := range 2 {
			for zh := range 2 {
				t := y(zd*2 + zh)
				e, o := at(eBase[zd], zh), at(oBase[zd], zh)
				switch xw {
				case 0:
					w.ins("VMOVUPS %s, %s", e, t)
				case 1:
					w.ins("VMOVUPS %s, %s", e, t)
					w.ins("VADDPS %s, %s, %s", o, t, t)
				case 2:
					w.ins("VMOVUPS %s, %s", e, t)
					w.ins("VSUBPS %s, %s, %s", o, t, t)
				case 3:
					w.ins("VMOVUPS %s, %s", o, t)
					w.ins("VSUBPS %s, Y15, %s", t, t)
				}
			}
		}
		// Along H: H[zd][ξh].
		h0 := a(y(0), y(1), [4]string{"", y(4), y(5), y(6)})
		h1 := a(y(2), y(3), [4]string{"", y(7), y(8), y(9)})
		// Along D, stored in σ order.
		for xh := range 4 {
			r := a(h0[xh], h1[xh], [4]string{"", y(10), y(11), y(12)})
			storeSeq(w, r[0], r[1], r[2], r[3])
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// wgT8 emits wgT8Asm(src, dst *float32, dsig, dt int): for σ < 64, the 8×8 block
// src[c·512 + σ·8 + j] (c, j < 8) transposed into dst[σ·dsig + j·dt + c] (AVX).
func wgT8(w *asm) {
	w.WriteString("\n// func wgT8Asm(src, dst *float32, dsig, dt int)\n")
	w.WriteString("TEXT ·wgT8Asm(SB), NOSPLIT, $0-32\n")
	w.ins("MOVQ src+0(FP), SI")
	w.ins("MOVQ dst+8(FP), DI")
	w.ins("MOVQ dsig+16(FP), R8")
	w.ins("SHLQ $2, R8")
	w.ins("MOVQ dt+24(FP), R9")
	w.ins("SHLQ $2, R9")
	w.ins("LEAQ (R9)(R9*2), R10")
	w.ins("MOVQ $64, CX")
	w.label("loop")
	for c := range 8 {
		w.ins("VMOVUPS %d(SI), %s", c*2048, y(c))
	}
	// Rows r0…r7 (channels) → columns (tiles): unpack pairs, shuffle quads, swap halves.
	for p := range 4 {
		w.ins("VUNPCKLPS %s, %s, %s", y(2*p+1), y(2*p), y(8+2*p))
		w.ins("VUNPCKHPS %s, %s, %s", y(2*p+1), y(2*p), y(8+2*p+1))
	}
	// t0..t7 in Y8..Y15: t0=lo(r0,r1) t1=hi(r0,r1) t2=lo(r2,r3) t3=hi(r2,r3) …
	for h := range 2 {
		t := func(i int) string { return y(8 + 4*h + i) }
		u := func(i int) string { return y(4*h + i) }
		w.ins("VSHUFPS $0x44, %s, %s, %s", t(2), t(0), u(0))
		w.ins("VSHUFPS $0xEE, %s, %s, %s", t(2), t(0), u(1))
		w.ins("VSHUFPS $0x44, %s, %s, %s", t(3), t(1), u(2))
		w.ins("VSHUFPS $0xEE, %s, %s, %s", t(3), t(1), u(3))
	}
	// u0..u3 (rows 0–3) in Y0..Y3, u4..u7 (rows 4–7) in Y4..Y7; column j = u(j%4)
	// half j/4 of rows 0–3 beside the same of rows 4–7.
	w.ins("LEAQ (DI)(R9*4), DX")
	for j := range 8 {
		imm := "$0x20"
		if j >= 4 {
			imm = "$0x31"
		}
		w.ins("VPERM2F128 %s, %s, %s, %s", imm, y(4+j%4), y(j%4), y(8+j))
	}
	dst := []string{"(DI)", "(DI)(R9*1)", "(DI)(R9*2)", "(DI)(R10*1)", "(DX)", "(DX)(R9*1)", "(DX)(R9*2)", "(DX)(R10*1)"}
	for j := range 8 {
		w.ins("VMOVUPS %s, %s", y(8+j), dst[j])
	}
	w.ins("ADDQ $32, SI")
	w.ins("ADDQ R8, DI")
	w.ins("DECQ CX")
	w.ins("JNZ loop")
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// wgFilt emits wgFiltAsm(src, dst *float32, ds int): wgFilter for 8 filters in lanes,
// g[k·8 + lane] (k = (kd·3+kh)·3+kw), dst[σ·ds + lane].
func wgFilt(w *asm) {
	w.WriteString("\n// func wgFiltAsm(src, dst *float32, ds int)\n")
	w.WriteString("TEXT ·wgFiltAsm(SB), NOSPLIT, $0-24\n")
	w.ins("MOVQ src+0(FP), SI")
	w.ins("MOVQ dst+8(FP), DI")
	w.ins("MOVQ ds+16(FP), R11")
	w.ins("SHLQ $2, R11")
	w.ins("MOVL $0x3f000000, AX") // 0.5
	w.ins("MOVL AX, X15")
	w.ins("VBROADCASTSS X15, Y31")
	// f emits (a, (a+b+c)·½, (a−b+c)·½, c) into r1, r2 and returns the four names.
	f := func(a, b, c, r1, r2 string) [4]string {
		w.ins("VADDPS %s, %s, %s", b, a, r1)
		w.ins("VADDPS %s, %s, %s", c, r1, r1)
		w.ins("VMULPS Y31, %s, %s", r1, r1)
		w.ins("VSUBPS %s, %s, %s", b, a, r2)
		w.ins("VADDPS %s, %s, %s", c, r2, r2)
		w.ins("VMULPS Y31, %s, %s", r2, r2)
		return [4]string{a, r1, r2, c}
	}
	for xw := range 4 {
		// Along W: S1[kd·3+kh] for this ξw, in Y0…Y8 (loaded, or computed into them).
		var s1 [9]string
		for r := range 9 {
			dst := y(r)
			switch xw {
			case 0, 3:
				k := 0
				if xw == 3 {
					k = 2
				}
				w.ins("VMOVUPS %d(SI), %s", (r*3+k)*32, dst)
			default:
				w.ins("VMOVUPS %d(SI), Y9", (r*3)*32)
				w.ins("VMOVUPS %d(SI), Y10", (r*3+1)*32)
				w.ins("VMOVUPS %d(SI), Y11", (r*3+2)*32)
				if xw == 1 {
					w.ins("VADDPS Y10, Y9, %s", dst)
				} else {
					w.ins("VSUBPS Y10, Y9, %s", dst)
				}
				w.ins("VADDPS Y11, %s, %s", dst, dst)
				w.ins("VMULPS Y31, %s, %s", dst, dst)
			}
			s1[r] = dst
		}
		// Along H: S2[kd][ξh], new values in Y12…Y17.
		var s2 [3][4]string
		for kd := range 3 {
			s2[kd] = f(s1[kd*3], s1[kd*3+1], s1[kd*3+2], y(12+2*kd), y(13+2*kd))
		}
		// Along D, stored in σ order.
		for xh := range 4 {
			o := f(s2[0][xh], s2[1][xh], s2[2][xh], y(18), y(19))
			storeSeq(w, o[0], o[1], o[2], o[3])
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// wgIn16 emits wgIn16Asm: wgInAsm within 16 YMM registers (AVX2 machines), keeping the
// H-transformed values of a ξw pass in 512 bytes of stack instead of Y16…Y31.
func wgIn16(w *asm) {
	w.WriteString("\n// func wgIn16Asm(src *float32, l, row, plane int, dst *float32, ds int)\n")
	w.WriteString("TEXT ·wgIn16Asm(SB), NOSPLIT, $512-48\n")
	eBase, oBase, at := wgInSetup(w)
	slot := func(rd, xh int) string { return fmt.Sprintf("%d(SP)", 32*(rd*4+xh)) }
	for xw := range 4 {
		for rd := range 4 {
			for rh := range 4 {
				t := y(rh)
				e0, e1 := at(eBase[rd], rh, 0), at(eBase[rd], rh, 4)
				o0, o1 := at(oBase[rd], rh, 0), at(oBase[rd], rh, 4)
				wgInW(w, xw, e0, e1, o0, o1, t)
			}
			bt(w, y(0), y(1), y(2), y(3), y(4), y(5), y(6), y(7))
			for xh := range 4 {
				w.ins("VMOVUPS %s, %s", y(4+xh), slot(rd, xh))
			}
		}
		for xh := range 4 {
			for rd := range 4 {
				w.ins("VMOVUPS %s, %s", slot(rd, xh), y(8+rd))
			}
			bt(w, y(8), y(9), y(10), y(11), y(12), y(13), y(14), y(15))
			storeSeq(w, y(12), y(13), y(14), y(15))
		}
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// wgOut16 emits wgOut16Asm: wgOutAsm within 16 YMM registers, with the H-transformed
// values and the first column parity's results on the stack.
func wgOut16(w *asm) {
	w.WriteString("\n// func wgOut16Asm(m *float32, ms int, bias float32, out *float32)\n")
	w.WriteString("TEXT ·wgOut16Asm(SB), NOSPLIT, $512-32\n")
	w.ins("MOVQ m+0(FP), SI")
	w.ins("MOVQ ms+8(FP), R10")
	w.ins("SHLQ $2, R10")
	w.ins("MOVQ R10, R8")
	w.ins("SHLQ $4, R8") // 16·ms: the ξw step
	w.ins("LEAQ (R8)(R8*2), R9")
	w.ins("MOVQ R10, R11")
	w.ins("SHLQ $2, R11") // 4·ms: the ξh step
	w.ins("VBROADCASTSS bias+16(FP), Y15")
	w.ins("MOVQ out+24(FP), DI")
	hSlot := func(xd, b int) string { return fmt.Sprintf("%d(SP)", 32*(xd*2+b)) }
	fSlot := func(c, i int) string { return fmt.Sprintf("%d(SP)", 256+32*(c*4+i)) }
	for c := range 2 {
		w.ins("MOVQ SI, CX")
		for xd := range 4 {
			// Along W for the four ξh of this ξd (σ = (ξw·4+ξh)·4+ξd), then along H.
			w.ins("MOVQ CX, BX")
			for xh := range 4 {
				r := y(xh)
				if c == 0 {
					w.ins("VMOVUPS (BX), %s", r)
					w.ins("VADDPS (BX)(R8*1), %s, %s", r, r)
					w.ins("VADDPS (BX)(R8*2), %s, %s", r, r)
				} else {
					w.ins("VMOVUPS (BX)(R8*1), %s", r)
					w.ins("VSUBPS (BX)(R8*2), %s, %s", r, r)
					w.ins("VSUBPS (BX)(R9*1), %s, %s", r, r)
				}
				w.ins("ADDQ R11, BX")
			}
			at2(w, y(0), y(1), y(2), y(3), y(4), y(5))
			w.ins("VMOVUPS Y4, %s", hSlot(xd, 0))
			w.ins("VMOVUPS Y5, %s", hSlot(xd, 1))
			w.ins("ADDQ R10, CX")
		}
		// Along D, plus the bias.
		for b := range 2 {
			for xd := range 4 {
				w.ins("VMOVUPS %s, %s", hSlot(xd, b), y(6+xd))
			}
			at2(w, y(6), y(7), y(8), y(9), y(10), y(11))
			w.ins("VADDPS Y15, Y10, Y10")
			w.ins("VADDPS Y15, Y11, Y11")
			w.ins("VMOVUPS Y10, %s", fSlot(c, 0*2+b))
			w.ins("VMOVUPS Y11, %s", fSlot(c, 1*2+b))
		}
	}
	for i := range 4 {
		w.ins("VMOVUPS %s, Y12", fSlot(0, i))
		w.ins("VMOVUPS %s, Y13", fSlot(1, i))
		w.ins("VUNPCKLPS Y13, Y12, Y0")
		w.ins("VUNPCKHPS Y13, Y12, Y1")
		w.ins("VPERM2F128 $0x20, Y1, Y0, Y2")
		w.ins("VPERM2F128 $0x31, Y1, Y0, Y3")
		w.ins("VMOVUPS Y2, %d(DI)", 64*i)
		w.ins("VMOVUPS Y3, %d(DI)", 64*i+32)
	}
	w.ins("VZEROUPPER")
	w.ins("RET")
}

// wgInSetup emits the input transforms' prologue: E rows of the four planes based at AX,
// BX, CX, DX and their O rows at SI, R10, R13, R8; R9 and R12 hold one and three row
// strides, DI the output and R11 its σ stride, in bytes. at addresses row rh of a plane
// base, disp bytes on.
func wgInSetup(w *asm) (eBase, oBase [4]string, at func(base string, rh, disp int) string) {
	w.ins("MOVQ src+0(FP), AX")
	w.ins("MOVQ l+8(FP), R8")
	w.ins("SHLQ $2, R8")
	w.ins("MOVQ row+16(FP), R9")
	w.ins("SHLQ $2, R9")
	w.ins("LEAQ (R9)(R9*2), R12")
	w.ins("MOVQ plane+24(FP), R10")
	w.ins("SHLQ $2, R10")
	w.ins("LEAQ (AX)(R10*1), BX")
	w.ins("LEAQ (BX)(R10*1), CX")
	w.ins("LEAQ (CX)(R10*1), DX")
	w.ins("LEAQ (AX)(R8*1), SI")
	w.ins("LEAQ (BX)(R8*1), R10")
	w.ins("LEAQ (CX)(R8*1), R13")
	w.ins("LEAQ (DX)(R8*1), R8")
	w.ins("MOVQ dst+32(FP), DI")
	w.ins("MOVQ ds+40(FP), R11")
	w.ins("SHLQ $2, R11")
	at = func(base string, rh, disp int) string {
		switch rh {
		case 0:
			return fmt.Sprintf("%d(%s)", disp, base)
		case 1:
			return fmt.Sprintf("%d(%s)(R9*1)", disp, base)
		case 2:
			return fmt.Sprintf("%d(%s)(R9*2)", disp, base)
		}
		return fmt.Sprintf("%d(%s)(R12*1)", disp, base)
	}
	return [4]string{"AX", "BX", "CX", "DX"}, [4]string{"SI", "R10", "R13", "R8"}, at
}

// wgInW emits value ξw of the input transform along W for one row into t:
// Bᵀ(E0, O0, E1, O1) = (E0−E1, O0+E1, E1−O0, O0−O1), operands in memory.
func wgInW(w *asm, xw int, e0, e1, o0, o1, t string) {
	switch xw {
	case 0:
		w.ins("VMOVUPS %s, %s", e0, t)
		w.ins("VSUBPS %s, %s, %s", e1, t, t)
	case 1:
		w.ins("VMOVUPS %s, %s", o0, t)
		w.ins("VADDPS %s, %s, %s", e1, t, t)
	case 2:
		w.ins("VMOVUPS %s, %s", e1, t)
		w.ins("VSUBPS %s, %s, %s", o0, t, t)
	case 3:
		w.ins("VMOVUPS %s, %s", o0, t)
		w.ins("VSUBPS %s, %s, %s", o1, t, t)
	}
}

// storeSeq stores four registers to consecutive σ positions: (DI), advancing DI by the
// σ stride R11 after each.
func storeSeq(w *asm, regs ...string) {
	for _, r := range regs {
		w.ins("VMOVUPS %s, (DI)", r)
		w.ins("ADDQ R11, DI")
	}
}
