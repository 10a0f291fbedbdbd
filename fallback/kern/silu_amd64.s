//go:build !purego

#include "textflag.h"

// SiLU kernels; the algorithm and the constant table (c = &siluTab, one 32-byte row per
// constant) are described in silu.go:
//   0 |x| mask, 32 clamp, 64 log2e, 96 ln2Hi, 128 ln2Lo, 160 c6, 192 c5, 224 c4,
//   256 c3, 288 c2, 320 1.0, 352 int 127.
// Register use per vector: X0 x, X1 t then s, X2 k (float), X3 k (int), X4 p, X5 z,
// X6 sign mask of x (all ones where x < 0 or x = -0).

// EXPPARTS_Y computes p (Y4), k (Y3, int) and z = p·2^{-min(k,127)} (Y5) from x (Y0);
// Y14 holds 1.0 and Y15 int 127.
#define EXPPARTS_Y \
	VANDPS      0(R8), Y0, Y1   \
	VMINPS      32(R8), Y1, Y1  \
	VMULPS      64(R8), Y1, Y2  \
	VCVTPS2DQ   Y2, Y3          \
	VCVTDQ2PS   Y3, Y2          \
	VFMSUB231PS 96(R8), Y2, Y1  \
	VFMADD231PS 128(R8), Y2, Y1 \
	VMOVUPS     160(R8), Y4     \
	VFMADD213PS 192(R8), Y1, Y4 \
	VFMADD213PS 224(R8), Y1, Y4 \
	VFMADD213PS 256(R8), Y1, Y4 \
	VFMADD213PS 288(R8), Y1, Y4 \
	VMULPS      Y1, Y4, Y4      \
	VFMADD213PS Y1, Y1, Y4      \
	VADDPS      Y14, Y4, Y4     \
	VPMINSD     Y15, Y3, Y5     \
	VPSUBD      Y5, Y15, Y5     \
	VPSLLD      $23, Y5, Y5     \
	VMULPS      Y5, Y4, Y5

// SFACT_Y splits 2^{-k} (k in Y3, masked to 0 where x ≥ 0 by Y6) into two normal-range
// factors s1 = 2^{-(k-k/2)} (Y3) and s2 = 2^{-k/2} (Y8). s1 is applied first to a factor
// that stays normal (x, or 1 + x·(1-σ)), exactly, which also keeps x·p from overflowing
// near -MaxFloat32; s2 last, so a denormal result rounds once.
#define SFACT_Y \
	VPAND  Y6, Y3, Y3   \
	VPSRLD $1, Y3, Y8   \
	VPSUBD Y8, Y3, Y3   \
	VPSUBD Y8, Y15, Y8  \
	VPSLLD $23, Y8, Y8  \
	VPSUBD Y3, Y15, Y3  \
	VPSLLD $23, Y3, Y3

// func siluAVX2(n int, x, y *float32, c *[12][8]uint32)
TEXT ·siluAVX2(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ c+24(FP), R8
	VMOVUPS 320(R8), Y14
	VMOVUPS 352(R8), Y15
	SHRQ $3, CX
	JZ   done
loop:
	VMOVUPS (SI), Y0
	EXPPARTS_Y
	VADDPS    Y14, Y5, Y5      // d = 1 + z
	VPSRAD    $31, Y0, Y6
	VBLENDVPS Y0, Y4, Y14, Y7  // x < 0 ? p : 1
	SFACT_Y
	VMULPS    Y3, Y0, Y1       // x·s1, exact
	VMULPS    Y7, Y1, Y7
	VDIVPS    Y5, Y7, Y7
	VMULPS    Y8, Y7, Y7
	VMOVUPS   Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  loop
done:
	VZEROUPPER
	RET

// func siluBackwardAVX2(n int, x, dy, dx *float32, c *[12][8]uint32)
TEXT ·siluBackwardAVX2(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ dy+16(FP), BX
	MOVQ dx+24(FP), DI
	MOVQ c+32(FP), R8
	VMOVUPS 320(R8), Y14
	VMOVUPS 352(R8), Y15
	SHRQ $3, CX
	JZ   bdone
bloop:
	VMOVUPS (SI), Y0
	EXPPARTS_Y
	VADDPS       Y14, Y5, Y10      // d = 1 + z
	VSUBPS       Y10, Y14, Y13
	VADDPS       Y5, Y13, Y13      // e = (1-d) + z, d's rounding error
	VDIVPS       Y10, Y14, Y10     // q = 1/d
	VMULPS       Y10, Y13, Y13
	VFNMADD231PS Y13, Y10, Y10     // q -= q·(e·q): 1/(1+z) to first order
	VMULPS      Y10, Y5, Y11       // z·q
	VMULPS      Y10, Y4, Y12       // p·q
	VPSRAD      $31, Y0, Y6
	VBLENDVPS   Y0, Y10, Y11, Y11  // 1-σ: x < 0 ? q : z·q
	VBLENDVPS   Y0, Y12, Y10, Y12  // σ (unscaled): x < 0 ? p·q : q
	VFMADD213PS Y14, Y0, Y11       // 1 + x·(1-σ)
	SFACT_Y
	VMULPS      Y3, Y11, Y11       // ·s1, exact
	VMOVUPS     (BX), Y9
	VMULPS      Y12, Y9, Y9
	VMULPS      Y11, Y9, Y9
	VMULPS      Y8, Y9, Y9
	VMOVUPS     Y9, (DI)
	ADDQ $32, SI
	ADDQ $32, BX
	ADDQ $32, DI
	DECQ CX
	JNZ  bloop
bdone:
	VZEROUPPER
	RET

// AVX-512: the constants live in Z16–Z27 (Z26 = 1.0, Z27 = int 127).
#define LOADCONST_Z \
	VPBROADCASTD 0(R8), Z16   \
	VBROADCASTSS 32(R8), Z17  \
	VBROADCASTSS 64(R8), Z18  \
	VBROADCASTSS 96(R8), Z19  \
	VBROADCASTSS 128(R8), Z20 \
	VBROADCASTSS 160(R8), Z21 \
	VBROADCASTSS 192(R8), Z22 \
	VBROADCASTSS 224(R8), Z23 \
	VBROADCASTSS 256(R8), Z24 \
	VBROADCASTSS 288(R8), Z25 \
	VBROADCASTSS 320(R8), Z26 \
	VPBROADCASTD 352(R8), Z27

#define EXPPARTS_Z \
	VPANDD      Z16, Z0, Z1 \
	VMINPS      Z17, Z1, Z1 \
	VMULPS      Z18, Z1, Z2 \
	VCVTPS2DQ   Z2, Z3      \
	VCVTDQ2PS   Z3, Z2      \
	VFMSUB231PS Z19, Z2, Z1 \
	VFMADD231PS Z20, Z2, Z1 \
	VMOVAPS     Z21, Z4     \
	VFMADD213PS Z22, Z1, Z4 \
	VFMADD213PS Z23, Z1, Z4 \
	VFMADD213PS Z24, Z1, Z4 \
	VFMADD213PS Z25, Z1, Z4 \
	VMULPS      Z1, Z4, Z4  \
	VFMADD213PS Z1, Z1, Z4  \
	VADDPS      Z26, Z4, Z4 \
	VPMINSD     Z27, Z3, Z5 \
	VPSUBD      Z5, Z27, Z5 \
	VPSLLD      $23, Z5, Z5 \
	VMULPS      Z5, Z4, Z5  \
	VPSRAD      $31, Z0, Z6

#define SFACT_Z \
	VPANDD Z6, Z3, Z3   \
	VPSRLD $1, Z3, Z8   \
	VPSUBD Z8, Z3, Z3   \
	VPSUBD Z8, Z27, Z8  \
	VPSLLD $23, Z8, Z8  \
	VPSUBD Z3, Z27, Z3  \
	VPSLLD $23, Z3, Z3

// func siluAVX512(n int, x, y *float32, c *[12][8]uint32)
TEXT ·siluAVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ c+24(FP), R8
	LOADCONST_Z
	SHRQ $4, CX
	JZ   zdone
zloop:
	VMOVUPS (SI), Z0
	EXPPARTS_Z
	VADDPS  Z26, Z5, Z5  // d = 1 + z
	VPANDD  Z6, Z4, Z7   // x < 0 ? p : 1
	VPANDND Z26, Z6, Z8
	VPORD   Z8, Z7, Z7
	SFACT_Z
	VMULPS  Z3, Z0, Z1   // x·s1, exact
	VMULPS  Z7, Z1, Z7
	VDIVPS  Z5, Z7, Z7
	VMULPS  Z8, Z7, Z7
	VMOVUPS Z7, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  zloop
zdone:
	VZEROUPPER
	RET

// func siluBackwardAVX512(n int, x, dy, dx *float32, c *[12][8]uint32)
TEXT ·siluBackwardAVX512(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ dy+16(FP), BX
	MOVQ dx+24(FP), DI
	MOVQ c+32(FP), R8
	LOADCONST_Z
	SHRQ $4, CX
	JZ   zbdone
zbloop:
	VMOVUPS     (SI), Z0
	EXPPARTS_Z
	VADDPS       Z26, Z5, Z10  // d = 1 + z
	VSUBPS       Z10, Z26, Z13
	VADDPS       Z5, Z13, Z13  // e = (1-d) + z, d's rounding error
	VDIVPS       Z10, Z26, Z10 // q = 1/d
	VMULPS       Z10, Z13, Z13
	VFNMADD231PS Z13, Z10, Z10 // q -= q·(e·q): 1/(1+z) to first order
	VMULPS      Z10, Z5, Z11   // z·q
	VMULPS      Z10, Z4, Z12   // p·q
	VPANDD      Z6, Z10, Z13   // 1-σ: x < 0 ? q : z·q
	VPANDND     Z11, Z6, Z11
	VPORD       Z13, Z11, Z11
	VPANDD      Z6, Z12, Z12   // σ (unscaled): x < 0 ? p·q : q
	VPANDND     Z10, Z6, Z13
	VPORD       Z13, Z12, Z12
	VFMADD213PS Z26, Z0, Z11   // 1 + x·(1-σ)
	SFACT_Z
	VMULPS      Z3, Z11, Z11   // ·s1, exact
	VMOVUPS     (BX), Z9
	VMULPS      Z12, Z9, Z9
	VMULPS      Z11, Z9, Z9
	VMULPS      Z8, Z9, Z9
	VMOVUPS     Z9, (DI)
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ $64, DI
	DECQ CX
	JNZ  zbloop
zbdone:
	VZEROUPPER
	RET
