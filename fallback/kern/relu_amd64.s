//go:build !purego

#include "textflag.h"

// func reluAVX(x, y *float32, n int)
// y = max(0, x) 32 floats per iteration. VMAXPS returns its second source operand (x
// here) when either is NaN or both are zero, so NaN and −0 pass through unchanged.
TEXT ·reluAVX(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ   done
	VXORPS Y4, Y4, Y4

loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VMAXPS  Y0, Y4, Y0
	VMAXPS  Y1, Y4, Y1
	VMAXPS  Y2, Y4, Y2
	VMAXPS  Y3, Y4, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	DECQ    CX
	JNZ     loop
	VZEROUPPER

done:
	RET

// func reluBackwardAVX(x, dy, dx *float32, n int)
// dx = dy AND mask(x NLE 0): compare predicate 6 (not-less-or-equal, unordered true) is
// true for x > 0 and for NaN, so those pass dy; the rest give +0.
TEXT ·reluBackwardAVX(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), BX
	MOVQ dx+16(FP), DI
	MOVQ n+24(FP), CX
	SHRQ $5, CX
	JZ   done
	VXORPS Y8, Y8, Y8

loop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VCMPPS  $6, Y8, Y0, Y0
	VCMPPS  $6, Y8, Y1, Y1
	VCMPPS  $6, Y8, Y2, Y2
	VCMPPS  $6, Y8, Y3, Y3
	VANDPS  0(BX), Y0, Y0
	VANDPS  32(BX), Y1, Y1
	VANDPS  64(BX), Y2, Y2
	VANDPS  96(BX), Y3, Y3
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, BX
	ADDQ    $128, DI
	DECQ    CX
	JNZ     loop
	VZEROUPPER

done:
	RET
