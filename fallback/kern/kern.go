// Package kern holds the CPU backend's compute kernels: a packed, blocked single-precision
// GEMM and implicit-GEMM 3-D convolutions (forward, input gradient, weight gradient) built
// on it. The micro-kernels are Go assembly written by ./internal/gen, chosen at run time
// with golang.org/x/sys/cpu: AVX-512 (8×32 outer-product kernels, which read B rows in
// place when they are contiguous, and a 12×2 dot-product kernel for the weight gradient)
// when the CPU has AVX512F+VL; else AVX2+FMA (6×16 and 3×4); on arm64, NEON (6×16);
// elsewhere, or with -tags purego, a plain-Go 6×16 kernel runs behind the same driver.
// Work is spread over runtime.GOMAXPROCS goroutines and scratch buffers are reused, so
// steady-state training does not allocate large buffers per step.
//
// Convolutions never write out an im2col matrix: the input is padded once (per batch, or
// per sample for large volumes) and the GEMM's B operand is read from it through offset
// tables (see axis). Stride-2 input gradients run as one stride-1 GEMM per residue class
// of positions (phase).
//
// The 3×3×3, stride-1, pad-1 convolutions (all of the velocity model's) run instead as
// Winograd F(2×2×2, 3×3×3) (winograd.go) in all three directions with the AVX-512
// kernels, forward and for the input gradient with the AVX2 ones: 64 multiplications per 2×2×2 output tile and channel pair instead of
// 216, with transforms in assembly. Its rounding is bounded per output by the magnitudes
// of whole tiles; winograd_test.go checks that bound.
package kern

//go:generate go run ./internal/gen

import (
	"fmt"
)

// ConvShape is a convolution's geometry in (D, H, W) order for NCDHW float32 tensors:
// x (N, Ci, In…), w (Co, Ci, K…), y (N, Co, Out…).
type ConvShape struct {
	N, Ci, Co               int
	In, K, Out, Stride, Pad [3]int
}

func (s ConvShape) check(op string) {
	for a := range 3 {
		if s.K[a] <= 0 || s.Stride[a] <= 0 || s.Pad[a] < 0 || s.In[a] <= 0 || s.Out[a] <= 0 {
			panic(fmt.Sprintf("kern.%s: bad geometry %+v", op, s))
		}
		if want := (s.In[a]+2*s.Pad[a]-s.K[a])/s.Stride[a] + 1; want != s.Out[a] {
			panic(fmt.Sprintf("kern.%s: Out[%d] = %d but In %d, K %d, stride %d, pad %d give %d",
				op, a, s.Out[a], s.In[a], s.K[a], s.Stride[a], s.Pad[a], want))
		}
	}
	if s.N < 0 || s.Ci <= 0 || s.Co <= 0 {
		panic(fmt.Sprintf("kern.%s: bad sizes %+v", op, s))
	}
}

func (s ConvShape) inSize() int  { return s.In[0] * s.In[1] * s.In[2] }
func (s ConvShape) outSize() int { return s.Out[0] * s.Out[1] * s.Out[2] }
func (s ConvShape) taps() int    { return s.K[0] * s.K[1] * s.K[2] }

func checkLen(op, name string, got, want int) {
	if got < want {
		panic(fmt.Sprintf("kern.%s: %s has %d elements, the shape needs %d", op, name, got, want))
	}
}

// padded returns sample src (c channels of extent in) padded by lo/hi zeros per axis,
// in a pooled buffer, or src itself (and nil) when no padding is needed.
func padded(src []float32, c int, in, lo, hi [3]int) ([]float32, *[]float32, [3]int) {
	ext := [3]int{in[0] + lo[0] + hi[0], in[1] + lo[1] + hi[1], in[2] + lo[2] + hi[2]}
	if lo == [3]int{} && hi == [3]int{} {
		return src, nil, ext
	}
	vol := ext[0] * ext[1] * ext[2]
	buf := getBuf(c * vol)
	dst := *buf
	inVol := in[0] * in[1] * in[2]
	workers := numWorkers()
	if c*vol < 1<<16 {
		workers = 1
	}
	parallel(c, workers, func(_, ch int, _ *workspace) {
		d := dst[ch*vol : (ch+1)*vol]
		s := src[ch*inVol : (ch+1)*inVol]
		rowW := ext[2]
		for z := 0; z < ext[0]; z++ {
			iz := z - lo[0]
			for y := 0; y < ext[1]; y++ {
				iy := y - lo[1]
				row := d[(z*ext[1]+y)*rowW : (z*ext[1]+y+1)*rowW]
				if iz < 0 || iz >= in[0] || iy < 0 || iy >= in[1] {
					clear(row)
					continue
				}
				clear(row[:lo[2]])
				copy(row[lo[2]:lo[2]+in[2]], s[(iz*in[1]+iy)*in[2]:(iz*in[1]+iy+1)*in[2]])
				clear(row[lo[2]+in[2]:])
			}
		}
	})
	return dst, buf, ext
}

// Conv3dForward computes y = conv(x, w) + bias like torch.nn.functional.conv3d;
// bias may be nil. y is overwritten.
func Conv3dForward(x, w, bias, y []float32, s ConvShape) {
	s.check("Conv3dForward")
	R, P := s.Ci*s.taps(), s.outSize()
	checkLen("Conv3dForward", "x", len(x), s.N*s.Ci*s.inSize())
	checkLen("Conv3dForward", "w", len(w), s.Co*R)
	checkLen("Conv3dForward", "y", len(y), s.N*s.Co*P)
	if winogradOK(s, false) {
		if bias != nil {
			checkLen("Conv3dForward", "bias", len(bias), s.Co)
		}
		winogradForward(x, w, bias, y, s)
		return
	}
	// With a bias, A = [W | bias] and B gets a last row of ones (packB): the GEMM adds
	// the bias on the way.
	kTot := R
	am := mat{data: w, rows: linear(s.Co, R, 0), cols: linear(R, 1, 0)}
	if bias != nil {
		checkLen("Conv3dForward", "bias", len(bias), s.Co)
		kTot = R + 1
		wb := getBuf(s.Co * kTot)
		defer putBuf(wb)
		for o := range s.Co {
			copy((*wb)[o*kTot:o*kTot+R], w[o*R:(o+1)*R])
			(*wb)[o*kTot+R] = bias[o]
		}
		am = mat{data: *wb, rows: linear(s.Co, kTot, 0), cols: linear(kTot, 1, 0)}
	}
	pa := packWhole(am, s.Co, kTot, 1)
	defer pa.release()
	crowP := rowOffsets(linear(s.Co, P, 0), s.Co)
	defer intPool.Put(crowP)
	group := batchGroup(s.N, s.Ci, s.In, s.Pad, s.Pad)
	ext := [3]int{s.In[0] + 2*s.Pad[0], s.In[1] + 2*s.Pad[1], s.In[2] + 2*s.Pad[2]}
	vol := ext[0] * ext[1] * ext[2]
	kOffP := rowOffsets(grid(0, []int{s.Ci, s.K[0], s.K[1], s.K[2]},
		[]int{vol, ext[1] * ext[2], ext[2], 1}), kTot)
	defer intPool.Put(kOffP)
	if kTot > R {
		(*kOffP)[R] = onesRow
	}
	for n0 := 0; n0 < s.N; n0 += group {
		g := min(group, s.N-n0)
		// Samples of a group are consecutive channels of one padded volume array.
		src, buf, _ := padded(x[n0*s.Ci*s.inSize():], g*s.Ci, s.In, s.Pad, s.Pad)
		gm := gemmN{
			a: pa, n: g * P,
			b: mat{data: src, cols: grid(0, []int{g, s.Out[0], s.Out[1], s.Out[2]},
				[]int{s.Ci * vol, s.Stride[0] * ext[1] * ext[2], s.Stride[1] * ext[2], s.Stride[2]})},
			kOff: *kOffP,
			c:    y[n0*s.Co*P : (n0+g)*s.Co*P],
			crow: *crowP,
			ccol: grid(0, []int{g, P}, []int{s.Co * P, 1}),
		}
		gm.run(numWorkers())
		if buf != nil {
			putBuf(buf)
		}
	}
}

// batchGroup is how many samples go through one GEMM: the whole batch when its padded
// copy is small (the velocity model's), which gives the workers one long list of column
// chunks instead of a barrier per sample; else one sample at a time, bounding scratch.
func batchGroup(n, c int, in, lo, hi [3]int) int {
	vol := (in[0] + lo[0] + hi[0]) * (in[1] + lo[1] + hi[1]) * (in[2] + lo[2] + hi[2])
	if n*c*vol <= 8<<20 {
		return max(1, n)
	}
	return 1
}

// phase describes, along one axis, the input positions i ≡ i0 (mod stride) of a
// transposed convolution: T of them, fed by the Q taps k = φ + stride·q; for
// q' = Q-1-q the output index is start + t + q' in dy padded by the axis' lo.
type phase struct {
	i0, t, q, phi, lo int // lo: output index (unpadded) for t = q' = 0
}

func phases(in, out, k, stride, pad int) (ps []phase, padLo, padHi int) {
	for phi := range stride {
		i0 := ((phi-pad)%stride + stride) % stride
		p := phase{i0: i0, phi: phi}
		if i0 < in {
			p.t = (in - i0 + stride - 1) / stride
		}
		if k > phi {
			p.q = (k - phi + stride - 1) / stride
		}
		base := (i0 + pad - phi) / stride
		p.lo = base - (p.q - 1)
		if p.t > 0 && p.q > 0 {
			padLo = max(padLo, -p.lo)
			padHi = max(padHi, p.lo+p.t+p.q-2-(out-1))
		}
		ps = append(ps, p)
	}
	return ps, padLo, padHi
}

// Conv3dBackwardData computes dx, the transposed convolution of dy with w (the input
// gradient of Conv3dForward, and ConvTranspose3d's forward), overwriting dx. s.In is
// dx's extent and s.Out dy's. Each residue class of input positions modulo the stride is
// an ordinary stride-1 correlation of dy with a flipped sub-kernel; for stride 1 that is
// the forward conv with flipped, transposed weights.
func Conv3dBackwardData(dy, w, dx []float32, s ConvShape) {
	s.check("Conv3dBackwardData")
	P, V, KKK := s.outSize(), s.inSize(), s.taps()
	checkLen("Conv3dBackwardData", "dy", len(dy), s.N*s.Co*P)
	checkLen("Conv3dBackwardData", "w", len(w), s.Co*s.Ci*KKK)
	checkLen("Conv3dBackwardData", "dx", len(dx), s.N*s.Ci*V)
	if winogradOK(s, false) {
		winogradBackwardData(dy, w, dx, s)
		return
	}
	var ph [3][]phase
	var lo, hi [3]int
	for a := range 3 {
		ph[a], lo[a], hi[a] = phases(s.In[a], s.Out[a], s.K[a], s.Stride[a], s.Pad[a])
	}
	type job struct {
		pd, ph, pw phase
		a          packedA
		kk         int
	}
	var jobs []job
	for _, pd := range ph[0] {
		for _, phh := range ph[1] {
			for _, pw := range ph[2] {
				if pd.t == 0 || phh.t == 0 || pw.t == 0 {
					continue
				}
				kk := s.Co * pd.q * phh.q * pw.q
				// A[c][(o, q'd, q'h, q'w)] = w[o][c][φ+s(Q-1-q')…]: negative strides flip.
				am := mat{data: w,
					rows: linear(s.Ci, KKK, 0),
					cols: grid(
						(pd.phi+s.Stride[0]*(pd.q-1))*s.K[1]*s.K[2]+(phh.phi+s.Stride[1]*(phh.q-1))*s.K[2]+pw.phi+s.Stride[2]*(pw.q-1),
						[]int{s.Co, pd.q, phh.q, pw.q},
						[]int{s.Ci * KKK, -s.Stride[0] * s.K[1] * s.K[2], -s.Stride[1] * s.K[2], -s.Stride[2]}),
				}
				jobs = append(jobs, job{pd, phh, pw, packWhole(am, s.Ci, kk, 1), kk})
			}
		}
	}
	defer func() {
		for _, j := range jobs {
			j.a.release()
		}
	}()
	crowP := rowOffsets(linear(s.Ci, V, 0), s.Ci)
	defer intPool.Put(crowP)
	stride1 := s.Stride == [3]int{1, 1, 1}
	// Every input position lies in exactly one phase, so the phases overwrite all of dx;
	// a phase without taps (kernel < stride) is a GEMM with k = 0, which writes zeros.
	group := batchGroup(s.N, s.Co, s.Out, lo, hi)
	e := [3]int{s.Out[0] + lo[0] + hi[0], s.Out[1] + lo[1] + hi[1], s.Out[2] + lo[2] + hi[2]}
	volDy := e[0] * e[1] * e[2]
	for n0 := 0; n0 < s.N; n0 += group {
		g := min(group, s.N-n0)
		dxn := dx[n0*s.Ci*V : (n0+g)*s.Ci*V]
		src, buf, _ := padded(dy[n0*s.Co*P:], g*s.Co, s.Out, lo, hi)
		for _, j := range jobs {
			kOff := rowOffsets(grid(0, []int{s.Co, j.pd.q, j.ph.q, j.pw.q},
				[]int{volDy, e[1] * e[2], e[2], 1}), j.kk)
			tn := j.pd.t * j.ph.t * j.pw.t
			// dx positions of this phase: (i0 + stride·t) per axis, per sample.
			phaseCols := grid(j.pd.i0*s.In[1]*s.In[2]+j.ph.i0*s.In[2]+j.pw.i0,
				[]int{j.pd.t, j.ph.t, j.pw.t},
				[]int{s.Stride[0] * s.In[1] * s.In[2], s.Stride[1] * s.In[2], s.Stride[2]})
			gm := gemmN{
				a: j.a, n: g * tn,
				b: mat{data: src, cols: grid((j.pd.lo+lo[0])*e[1]*e[2]+(j.ph.lo+lo[1])*e[2]+j.pw.lo+lo[2],
					[]int{g, j.pd.t, j.ph.t, j.pw.t}, []int{s.Co * volDy, e[1] * e[2], e[2], 1})},
				kOff: *kOff,
				c:    dxn,
				crow: *crowP,
			}
			if stride1 {
				gm.ccol = grid(0, []int{g, tn}, []int{s.Ci * V, 1})
				gm.run(numWorkers())
			} else {
				// Strided outputs would send every tile through the scatter path: write
				// the phase contiguously, as (sample, channel, t), then spread it over dx
				// in one pass.
				tmp := getBuf(g * s.Ci * tn)
				crowT := rowOffsets(linear(s.Ci, tn, 0), s.Ci)
				gm.c, gm.crow, gm.ccol = *tmp, *crowT, grid(0, []int{g, tn}, []int{s.Ci * tn, 1})
				gm.run(numWorkers())
				scatterPhase(dxn, *tmp, g*s.Ci, V, tn, phaseCols)
				intPool.Put(crowT)
				putBuf(tmp)
			}
			intPool.Put(kOff)
		}
		if buf != nil {
			putBuf(buf)
		}
	}
}

// scatterPhase copies tmp (c channels × tn phase positions) to dx (c channels of v
// positions) at the offsets of cols, in parallel over channels.
func scatterPhase(dx, tmp []float32, c, v, tn int, cols axis) {
	workers := numWorkers()
	if c*tn < 1<<16 {
		workers = 1
	}
	parallel(c, workers, func(_, ch int, ws *workspace) {
		const blk = 1024
		ws.ints = growI(ws.ints, blk)
		d := dx[ch*v : (ch+1)*v]
		t := tmp[ch*tn : (ch+1)*tn]
		for j0 := 0; j0 < tn; j0 += blk {
			off := ws.ints[:min(blk, tn-j0)]
			cols.fill(off, j0)
			for jj, o := range off {
				d[o] = t[j0+jj]
			}
		}
	})
}

// Conv3dBackwardWeight computes dw[o,i,k…] = Σ_n,p dy[n,o,p]·x[n,i,p·stride+k-pad] and,
// when db is not nil, db[o] = Σ_n,p dy[n,o,p]; both are overwritten. As a GEMM it is
// dWᵀ (Ci·K³ × Co) = Xcol (Ci·K³ × N·P) · dYᵀ, split over the long reduction axis: each
// worker sums its chunks into a private dWᵀ, and the parts are added at the end.
func Conv3dBackwardWeight(x, dy, dw, db []float32, s ConvShape) {
	s.check("Conv3dBackwardWeight")
	R, P, V := s.Ci*s.taps(), s.outSize(), s.inSize()
	checkLen("Conv3dBackwardWeight", "x", len(x), s.N*s.Ci*V)
	checkLen("Conv3dBackwardWeight", "dy", len(dy), s.N*s.Co*P)
	checkLen("Conv3dBackwardWeight", "dw", len(dw), s.Co*R)
	if db != nil {
		checkLen("Conv3dBackwardWeight", "db", len(db), s.Co)
	}
	if winogradOK(s, true) {
		winogradBackwardWeight(x, dy, dw, db, s)
		return
	}
	if ks.dot != nil {
		backwardWeightDot(x, dy, dw, db, s)
		return
	}
	if db != nil {
		biasGrad(dy, db, s.N, s.Co, P)
	}
	mPad := (R + ks.mr - 1) / ks.mr * ks.mr
	nPad := (s.Co + ks.nr - 1) / ks.nr * ks.nr
	workers := gradWorkers(s)
	partSize := mPad * nPad
	partsP := gradParts(partSize)
	defer putBuf(partsP)
	parts := *partsP
	// Rows/columns of each slot's private dWᵀ: contiguous, padded to whole tiles.
	crowP := rowOffsets(linear(R, nPad, 0), R)
	defer intPool.Put(crowP)
	ccolP := rowOffsets(linear(nPad, 1, 0), nPad)
	defer intPool.Put(ccolP)
	bcolP := rowOffsets(linear(s.Co, P, 0), s.Co)
	defer intPool.Put(bcolP)
	// Reduction chunks: whole KC blocks, several per slot for balance.
	blocks := (P + kcBlock - 1) / kcBlock
	per := max(1, (blocks+4*gradSlots-1)/(4*gradSlots))
	chunkLen := per * kcBlock
	nChunks := (P + chunkLen - 1) / chunkLen
	var ext [3]int
	var aRowP *[]int
	for n := range s.N {
		src, buf, e := padded(x[n*s.Ci*V:], s.Ci, s.In, s.Pad, s.Pad)
		if aRowP == nil || e != ext {
			ext = e
			if aRowP != nil {
				intPool.Put(aRowP)
			}
			aRowP = rowOffsets(grid(0, []int{s.Ci, s.K[0], s.K[1], s.K[2]},
				[]int{e[0] * e[1] * e[2], e[1] * e[2], e[2], 1}), R)
		}
		aCols := grid(0, s.Out[:], []int{s.Stride[0] * e[1] * e[2], s.Stride[1] * e[2], s.Stride[2]})
		bRows := linear(P, 1, n*s.Co*P)
		aRow := *aRowP
		slotted(nChunks, workers, func(wi, ci int, ws *workspace) {
			part := parts[wi*partSize : (wi+1)*partSize]
			k0 := ci * chunkLen
			k1 := min(P, k0+chunkLen)
			ws.ints = growI(ws.ints, 2*kcBlock)
			kA, kB := ws.ints[:kcBlock], ws.ints[kcBlock:2*kcBlock]
			ws.b = growF(ws.b, kcBlock*nPad)
			ws.a = growF(ws.a, kcBlock*min(mcBlock, mPad))
			for pc := k0; pc < k1; pc += kcBlock {
				kc := min(kcBlock, k1-pc)
				aCols.fill(kA[:kc], pc)
				bRows.fill(kB[:kc], pc)
				packB(ws.b, dy, kB[:kc], (*bcolP)[:s.Co])
				for ic := 0; ic < R; ic += mcBlock {
					mc := min(mcBlock, R-ic)
					packA(ws.a, src, aRow[ic:ic+mc], kA[:kc], 1)
					macro(ws.a, ws.b, kc, part, (*crowP)[ic:ic+mc], (*ccolP)[:nPad], true, &ws.tile)
				}
			}
		})
		if buf != nil {
			putBuf(buf)
		}
	}
	if aRowP != nil {
		intPool.Put(aRowP)
	}
	sumSlots(parts, partSize, R, nPad, s.Co, func(r, o int, v float32) { dw[o*R+r] = v })
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, op(A) m×k,
// op(B) k×n, like BLAS sgemm. With beta = 0, C is not read (NaNs in it do not spread).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kern.Sgemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	checkLen("Sgemm", "c", len(c), (m-1)*ldc+n)
	if beta != 1 {
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
			} else {
				for j := range row {
					row[j] *= beta
				}
			}
		}
	}
	if k == 0 || alpha == 0 {
		return
	}
	am := mat{data: a, rows: linear(m, lda, 0), cols: linear(k, 1, 0)}
	if transA {
		am = mat{data: a, rows: linear(m, 1, 0), cols: linear(k, lda, 0)}
		checkLen("Sgemm", "a", len(a), (k-1)*lda+m)
	} else {
		checkLen("Sgemm", "a", len(a), (m-1)*lda+k)
	}
	bm := mat{data: b, rows: linear(k, ldb, 0), cols: linear(n, 1, 0)}
	if transB {
		bm = mat{data: b, rows: linear(k, 1, 0), cols: linear(n, ldb, 0)}
		checkLen("Sgemm", "b", len(b), (n-1)*ldb+k)
	} else {
		checkLen("Sgemm", "b", len(b), (k-1)*ldb+n)
	}
	pa := packWhole(am, m, k, alpha)
	defer pa.release()
	kOff := rowOffsets(bm.rows, k)
	defer intPool.Put(kOff)
	crow := rowOffsets(linear(m, ldc, 0), m)
	defer intPool.Put(crow)
	g := gemmN{a: pa, n: n, b: mat{data: b, cols: bm.cols}, kOff: *kOff, c: c, crow: *crow,
		ccol: linear(n, 1, 0), acc: true}
	g.run(numWorkers())
}
