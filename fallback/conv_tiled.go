package fallback

import "sync"

// The tiled convolutions treat a convolution as an implicit matrix product over the input
// padded once: in padded coordinates, output position o and kernel tap t = (ci, kd, kh, kw)
// read x at base(o) + off(t), so each tap is one table offset and the inner loops carry no
// edge logic. A stride-s convolution first becomes a stride-1 one over s³ phase images
// (space to depth), so one micro-kernel serves every geometry. The micro-kernels keep a
// 2 (output channels) × 4 (positions or taps) block of sums in registers, the shape that
// measured fastest in plain Go on amd64 (taller or wider blocks spill registers).

// scratch recycles the large temporary buffers (padded inputs, re-laid gradients).
var scratch sync.Pool

func getScratch(n int) []float32 {
	if p, ok := scratch.Get().(*[]float32); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]float32, n)
}

func putScratch(b []float32) { scratch.Put(&b) }

// padInput returns x (N, C, in…) copied into zeros of extents ext at offset before along
// each spatial axis. When nothing is added it returns x itself and owned = false.
func padInput(x []float32, n, c int, in, before, ext [3]int) (xp []float32, owned bool) {
	if before == [3]int{} && ext == in {
		return x, false
	}
	inSz, pSz := in[0]*in[1]*in[2], ext[0]*ext[1]*ext[2]
	xp = getScratch(n * c * pSz)
	parallel(n*c, pSz, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dst, src := xp[r*pSz:(r+1)*pSz], x[r*inSz:(r+1)*inSz]
			clear(dst)
			for d := range in[0] {
				for h := range in[1] {
					row := ((d+before[0])*ext[1]+h+before[1])*ext[2] + before[2]
					copy(dst[row:row+in[2]], src[(d*in[1]+h)*in[2]:(d*in[1]+h+1)*in[2]])
				}
			}
		}
	})
	return xp, true
}

// phase describes a stride-s convolution rewritten as a stride-1 one (space to depth):
// padded input position s·j + p becomes position j of channel c·S + phase(p), and kernel
// tap s·k' + p becomes tap k' of that channel, so y[o] = Σ w'[k']·x'[o + k'] with
// K' = ⌈K/s⌉ taps per axis (those with s·k'+p ≥ K are zero).
type phase struct {
	s, k2, ext [3]int // stride, K', extents of the phase images
	S          int    // phases per input channel, s0·s1·s2
}

func newPhase(s ConvShape) phase {
	ph := phase{s: s.Stride, S: s.Stride[0] * s.Stride[1] * s.Stride[2]}
	for a := range 3 {
		ph.k2[a] = (s.K[a] + s.Stride[a] - 1) / s.Stride[a]
		ph.ext[a] = (s.In[a] + 2*s.Pad[a] + s.Stride[a] - 1) / s.Stride[a]
	}
	return ph
}

// input returns the phase images of x (N, C, In…) with padding pad: (N, C·S, ext…).
func (ph phase) input(x []float32, n, c int, in, pad [3]int) (xp []float32, owned bool) {
	if ph.S == 1 {
		return padInput(x, n, c, in, pad, ph.ext)
	}
	inSz, pSz := in[0]*in[1]*in[2], ph.ext[0]*ph.ext[1]*ph.ext[2]
	s := ph.s
	xp = getScratch(n * c * ph.S * pSz)
	parallel(n*c, ph.S*pSz, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dst, src := xp[r*ph.S*pSz:(r+1)*ph.S*pSz], x[r*inSz:(r+1)*inSz]
			clear(dst)
			for d := range in[0] {
				pd, jd := (d+pad[0])%s[0], (d+pad[0])/s[0]
				for h := range in[1] {
					ph0, jh := (h+pad[1])%s[1], (h+pad[1])/s[1]
					row := src[(d*in[1]+h)*in[2] : (d*in[1]+h+1)*in[2]]
					for w, v := range row {
						pw, jw := (w+pad[2])%s[2], (w+pad[2])/s[2]
						p := (pd*s[1]+ph0)*s[2] + pw
						dst[p*pSz+(jd*ph.ext[1]+jh)*ph.ext[2]+jw] = v
					}
				}
			}
		}
	})
	return xp, true
}

// weights returns w (Co, Ci, K…) as the stride-1 kernel (Co, Ci·S, K'…).
func (ph phase) weights(w []float32, co, ci int, k [3]int) []float32 {
	if ph.S == 1 {
		return w
	}
	kSz, k2Sz := k[0]*k[1]*k[2], ph.k2[0]*ph.k2[1]*ph.k2[2]
	out := make([]float32, co*ci*ph.S*k2Sz)
	s := ph.s
	for o := range co {
		for i := range ci {
			src := w[(o*ci+i)*kSz : (o*ci+i+1)*kSz]
			for kd := range k[0] {
				for kh := range k[1] {
					for kw := range k[2] {
						p := ((kd%s[0])*s[1]+kh%s[1])*s[2] + kw%s[2]
						t := ((kd/s[0])*ph.k2[1]+kh/s[1])*ph.k2[2] + kw/s[2]
						out[((o*ci+i)*ph.S+p)*k2Sz+t] = src[(kd*k[1]+kh)*k[2]+kw]
					}
				}
			}
		}
	}
	return out
}

// unweights folds a stride-1 kernel gradient (Co, Ci·S, K'…) back to (Co, Ci, K…).
func (ph phase) unweights(w2, dw []float32, co, ci int, k [3]int) {
	kSz, k2Sz := k[0]*k[1]*k[2], ph.k2[0]*ph.k2[1]*ph.k2[2]
	s := ph.s
	for o := range co {
		for i := range ci {
			dst := dw[(o*ci+i)*kSz : (o*ci+i+1)*kSz]
			for kd := range k[0] {
				for kh := range k[1] {
					for kw := range k[2] {
						p := ((kd%s[0])*s[1]+kh%s[1])*s[2] + kw%s[2]
						t := ((kd/s[0])*ph.k2[1]+kh/s[1])*ph.k2[2] + kw/s[2]
						dst[(kd*k[1]+kh)*k[2]+kw] = w2[((o*ci+i)*ph.S+p)*k2Sz+t]
					}
				}
			}
		}
	}
}

// tapOffsets lists, for each tap t = ((ci·kD + kd)·kH + kh)·kW + kw (the weight layout),
// its offset within a padded sample of extents ext.
func tapOffsets(ci int, k, ext [3]int) []int {
	plane := ext[0] * ext[1] * ext[2]
	offs := make([]int, 0, ci*k[0]*k[1]*k[2])
	for c := range ci {
		for kd := range k[0] {
			for kh := range k[1] {
				for kw := range k[2] {
					offs = append(offs, c*plane+(kd*ext[1]+kh)*ext[2]+kw)
				}
			}
		}
	}
	return offs
}

// forwardTiled computes y = conv(x, w) + bias for any geometry: strided convolutions run
// as stride-1 ones on phase images.
func forwardTiled(x, w, bias, y []float32, s ConvShape) {
	ph := newPhase(s)
	xp, owned := ph.input(x, s.N, s.Ci, s.In, s.Pad)
	if owned {
		defer putScratch(xp)
	}
	convCore(xp, ph.ext, s.N, s.Ci*ph.S, s.Co, ph.k2, ph.weights(w, s.Co, s.Ci, s.K), bias, y, s.Out)
}

// convCore computes y[n,co,o] = bias[co] + Σ_{ci,k} w[co,ci,k]·x[n,ci,o+k], a stride-1
// convolution without padding over x of extents ext (which may exceed out+k-1; the excess
// is not read). Work is split over (sample, output-channel pair, output depth).
func convCore(x []float32, ext [3]int, N, Ci, Co int, k [3]int, w, bias, y []float32, out [3]int) {
	offs := tapOffsets(Ci, k, ext)
	T := len(offs)
	pairs := (Co + 1) / 2
	// wp[(pair·T + t)·2 + j] = w[2·pair+j, t]; a missing last channel has zero weights.
	wp := make([]float32, pairs*T*2)
	for co := range Co {
		for t := range T {
			wp[((co/2)*T+t)*2+co%2] = w[co*T+t]
		}
	}
	OD, OH, OW := out[0], out[1], out[2]
	outSz, sampleSz := OD*OH*OW, Ci*ext[0]*ext[1]*ext[2]
	parallel(N*pairs*OD, 2*T*OH*OW, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			od := it % OD
			pair := (it / OD) % pairs
			n := it / (OD * pairs)
			co := 2 * pair
			two := co+1 < Co
			var b0, b1 float32
			if bias != nil {
				b0 = bias[co]
				if two {
					b1 = bias[co+1]
				}
			}
			wpp := wp[pair*T*2 : (pair+1)*T*2]
			xs := x[n*sampleSz : (n+1)*sampleSz]
			y0 := y[(n*Co+co)*outSz+od*OH*OW : (n*Co+co)*outSz+(od+1)*OH*OW]
			var y1 []float32
			if two {
				y1 = y[(n*Co+co+1)*outSz+od*OH*OW : (n*Co+co+1)*outSz+(od+1)*OH*OW]
			}
			for oh := range OH {
				base := (od*ext[1] + oh) * ext[2]
				r0 := y0[oh*OW : (oh+1)*OW]
				ow := 0
				for ; ow+4 <= OW; ow += 4 {
					a0, a1, a2, a3, c0, c1, c2, c3 := fwd2x4(wpp, xs[base+ow:], offs)
					r := r0[ow : ow+4 : ow+4]
					r[0], r[1], r[2], r[3] = a0+b0, a1+b0, a2+b0, a3+b0
					if two {
						r := y1[oh*OW+ow : oh*OW+ow+4 : oh*OW+ow+4]
						r[0], r[1], r[2], r[3] = c0+b1, c1+b1, c2+b1, c3+b1
					}
				}
				for ; ow < OW; ow++ {
					a, c := fwd2x1(wpp, xs[base+ow:], offs)
					r0[ow] = a + b0
					if two {
						y1[oh*OW+ow] = c + b1
					}
				}
			}
		}
	})
}

// fwd2x4 returns Σ_t wp[2t+j]·x[off_t+i] for channels j < 2 and positions i < 4.
func fwd2x4(wp, x []float32, offs []int) (a0, a1, a2, a3, c0, c1, c2, c3 float32) {
	wp = wp[:2*len(offs)]
	for t, off := range offs {
		w := wp[2*t : 2*t+2 : 2*t+2]
		xs := x[off : off+4 : off+4]
		w0, w1 := w[0], w[1]
		x0, x1, x2, x3 := xs[0], xs[1], xs[2], xs[3]
		a0 += w0 * x0
		a1 += w0 * x1
		a2 += w0 * x2
		a3 += w0 * x3
		c0 += w1 * x0
		c1 += w1 * x1
		c2 += w1 * x2
		c3 += w1 * x3
	}
	return
}

// fwd2x1 is fwd2x4 for one position.
func fwd2x1(wp, x []float32, offs []int) (a, c float32) {
	wp = wp[:2*len(offs)]
	for t, off := range offs {
		v := x[off]
		a += wp[2*t] * v
		c += wp[2*t+1] * v
	}
	return
}

// backwardDataTiled computes dx as a stride-1 forward convolution of dy, padded by K'-1
// before, with the (phase) kernel transposed over channels and flipped in space. With
// stride 1 and padding below K the result is dx itself; otherwise it is the gradient of
// the padded phase images, from which dx is gathered.
func backwardDataTiled(dy, w, dx []float32, s ConvShape) {
	ph := newPhase(s)
	k2 := ph.k2
	k2Sz := k2[0] * k2[1] * k2[2]
	ci2 := s.Ci * ph.S
	w2 := ph.weights(w, s.Co, s.Ci, s.K)
	wt := make([]float32, len(w2))
	for co := range s.Co {
		for ci := range ci2 {
			src := w2[(co*ci2+ci)*k2Sz : (co*ci2+ci+1)*k2Sz]
			dst := wt[(ci*s.Co+co)*k2Sz : (ci*s.Co+co+1)*k2Sz]
			for k, v := range src {
				dst[k2Sz-1-k] = v // flipping all three axes reverses the flat index
			}
		}
	}
	direct := ph.S == 1 && s.Pad[0] < s.K[0] && s.Pad[1] < s.K[1] && s.Pad[2] < s.K[2]
	var before, outExt, padExt [3]int
	for a := range 3 {
		if direct { // dx[i] = Σ_k dy[i+pad-k]·w[k]: dy padded by K-1-pad gives exactly In
			before[a] = s.K[a] - 1 - s.Pad[a]
			outExt[a] = s.In[a]
		} else { // all phase positions, dy padded by K'-1 before and enough after
			before[a] = k2[a] - 1
			outExt[a] = ph.ext[a]
		}
		padExt[a] = outExt[a] + k2[a] - 1
	}
	dyp, owned := padInput(dy, s.N, s.Co, s.Out, before, padExt)
	if owned {
		defer putScratch(dyp)
	}
	if direct {
		convCore(dyp, padExt, s.N, s.Co, s.Ci, k2, wt, nil, dx, outExt)
		return
	}
	pSz := outExt[0] * outExt[1] * outExt[2]
	dxp := getScratch(s.N * ci2 * pSz)
	defer putScratch(dxp)
	convCore(dyp, padExt, s.N, s.Co, ci2, k2, wt, nil, dxp, outExt)
	// Gather: dx[n,c,i] = dxp[n, c·S + phase(i+pad), (i+pad)/s].
	st, in, pad, ext := s.Stride, s.In, s.Pad, ph.ext
	inSz := in[0] * in[1] * in[2]
	parallel(s.N*s.Ci, inSz, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src, dst := dxp[r*ph.S*pSz:(r+1)*ph.S*pSz], dx[r*inSz:(r+1)*inSz]
			for d := range in[0] {
				pd, jd := (d+pad[0])%st[0], (d+pad[0])/st[0]
				for h := range in[1] {
					phh, jh := (h+pad[1])%st[1], (h+pad[1])/st[1]
					row := dst[(d*in[1]+h)*in[2] : (d*in[1]+h+1)*in[2]]
					for w := range row {
						pw, jw := (w+pad[2])%st[2], (w+pad[2])/st[2]
						p := (pd*st[1]+phh)*st[2] + pw
						row[w] = src[p*pSz+(jd*ext[1]+jh)*ext[2]+jw]
					}
				}
			}
		}
	})
}

// backwardWeightTiled computes dw on the phase images (stride 1). dy is re-laid with the
// input's row and plane strides (zeros in between), so that output position q reads x at
// q + off(t) for every tap: each dw element is then one long contiguous dot product per
// sample. Work is split over (output-channel pair, group of 4 taps); samples are summed
// in float64.
func backwardWeightTiled(x, dy, dw []float32, s ConvShape) {
	ph := newPhase(s)
	xp, owned := ph.input(x, s.N, s.Ci, s.In, s.Pad)
	if owned {
		defer putScratch(xp)
	}
	ext := ph.ext
	offs := tapOffsets(s.Ci*ph.S, ph.k2, ext)
	T := len(offs)
	OD, OH, OW := s.Out[0], s.Out[1], s.Out[2]
	outSz, sampleSz := OD*OH*OW, s.Ci*ph.S*ext[0]*ext[1]*ext[2]
	// Positions q = (od·Hp + oh)·Wp + ow up to the last output; the largest x index read is
	// then inside the sample, since out + K' - 1 ≤ ext along each axis.
	Q := ((OD-1)*ext[1]+OH-1)*ext[2] + OW
	dyq := getScratch(s.N * s.Co * Q)
	defer putScratch(dyq)
	parallel(s.N*s.Co, Q, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dst, src := dyq[r*Q:(r+1)*Q], dy[r*outSz:(r+1)*outSz]
			clear(dst)
			for od := range OD {
				for oh := range OH {
					q := (od*ext[1] + oh) * ext[2]
					copy(dst[q:q+OW], src[(od*OH+oh)*OW:(od*OH+oh+1)*OW])
				}
			}
		}
	})
	w2 := dw
	if ph.S != 1 {
		w2 = make([]float32, s.Co*T)
	}
	zeros := make([]float32, Q) // the partner of an odd last channel
	pairs, groups := (s.Co+1)/2, (T+3)/4
	parallel(pairs*groups, s.N*Q*8, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			pair, g := it/groups, it%groups
			co := 2 * pair
			var o [4]int
			for j := range o {
				o[j] = offs[min(4*g+j, T-1)] // past the end: repeat a tap, drop its sums
			}
			var acc [8]float64
			for n := range s.N {
				d0 := dyq[(n*s.Co+co)*Q : (n*s.Co+co+1)*Q]
				d1 := zeros
				if co+1 < s.Co {
					d1 = dyq[(n*s.Co+co+1)*Q : (n*s.Co+co+2)*Q]
				}
				xs := xp[n*sampleSz : (n+1)*sampleSz]
				// float32 sums over chunks of positions, added in float64: the autoencoder's
				// layers have over 10⁵ positions per sample.
				for q0 := 0; q0 < Q; q0 += dwChunk {
					q1 := min(q0+dwChunk, Q)
					a0, a1, a2, a3, c0, c1, c2, c3 := dw2x4(d0[q0:q1], d1[q0:q1],
						xs[o[0]+q0:], xs[o[1]+q0:], xs[o[2]+q0:], xs[o[3]+q0:])
					acc[0] += float64(a0)
					acc[1] += float64(a1)
					acc[2] += float64(a2)
					acc[3] += float64(a3)
					acc[4] += float64(c0)
					acc[5] += float64(c1)
					acc[6] += float64(c2)
					acc[7] += float64(c3)
				}
			}
			for j := range 4 {
				t := 4*g + j
				if t >= T {
					break
				}
				w2[co*T+t] = float32(acc[j])
				if co+1 < s.Co {
					w2[(co+1)*T+t] = float32(acc[4+j])
				}
			}
		}
	})
	if ph.S != 1 {
		ph.unweights(w2, dw, s.Co, s.Ci, s.K)
	}
}

// dwChunk is how many positions a float32 partial sum of the weight gradient covers.
const dwChunk = 4096

// dw2x4 returns Σ_q d_j[q]·x_i[q] for the two gradient rows d0, d1 and four shifted input
// rows x0…x3.
func dw2x4(d0, d1, x0, x1, x2, x3 []float32) (a0, a1, a2, a3, c0, c1, c2, c3 float32) {
	n := len(d0)
	d1, x0, x1, x2, x3 = d1[:n], x0[:n], x1[:n], x2[:n], x3[:n]
	for q, u := range d0 {
		v := d1[q]
		y0, y1, y2, y3 := x0[q], x1[q], x2[q], x3[q]
		a0 += u * y0
		a1 += u * y1
		a2 += u * y2
		a3 += u * y3
		c0 += v * y0
		c1 += v * y1
		c2 += v * y2
		c3 += v * y3
	}
	return
}
