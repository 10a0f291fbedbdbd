package fallback

// The direct convolutions below follow the definition loop by loop with no scratch memory
// or re-layout; they are the oracle that TestTiledMatchesDirect holds the tiled ones to.

// span is the range [lo, hi) of output positions o whose input position o·stride - pad + k
// lies inside [0, in), for one kernel tap k along one axis.
type span struct{ lo, hi int }

func spans(in, k, out, stride, pad int) []span {
	sp := make([]span, k)
	for t := range k {
		lo := 0
		if pad > t {
			lo = (pad - t + stride - 1) / stride
		}
		hi := 0
		if last := in - 1 + pad - t; last >= 0 {
			hi = min(last/stride+1, out)
		}
		sp[t] = span{lo, max(hi, lo)}
	}
	return sp
}

type geometry struct {
	s                ConvShape
	inSz, outSz, kSz int
	sd, sh, sw       []span
}

func newGeometry(s ConvShape) geometry {
	return geometry{
		s:     s,
		inSz:  s.In[0] * s.In[1] * s.In[2],
		outSz: s.Out[0] * s.Out[1] * s.Out[2],
		kSz:   s.K[0] * s.K[1] * s.K[2],
		sd:    spans(s.In[0], s.K[0], s.Out[0], s.Stride[0], s.Pad[0]),
		sh:    spans(s.In[1], s.K[1], s.Out[1], s.Stride[1], s.Pad[1]),
		sw:    spans(s.In[2], s.K[2], s.Out[2], s.Stride[2], s.Pad[2]),
	}
}

// conv3dForwardDirect computes y = conv(x, w) + bias (bias may be nil) straight from the
// definition, with no scratch memory; the tests hold the tiled version to it. Work is split over
// (sample, output channel, output depth) planes; each is accumulated row by row over
// (ci, kd, kh, kw), with the innermost loop running along contiguous W.
func conv3dForwardDirect(x, w, bias, y []float32, s ConvShape) {
	g := newGeometry(s)
	H, W := s.In[1], s.In[2]
	OD, OH, OW := s.Out[0], s.Out[1], s.Out[2]
	KH, KW := s.K[1], s.K[2]
	sd, sh, sw := s.Stride[0], s.Stride[1], s.Stride[2]
	pd, ph, pw := s.Pad[0], s.Pad[1], s.Pad[2]
	plane := OH * OW
	parallel(s.N*s.Co*OD, s.Ci*g.kSz*plane, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			od := it % OD
			nco := it / OD
			n, co := nco/s.Co, nco%s.Co
			yp := y[nco*g.outSz+od*plane : nco*g.outSz+(od+1)*plane]
			b := float32(0)
			if bias != nil {
				b = bias[co]
			}
			for i := range yp {
				yp[i] = b
			}
			for ci := range s.Ci {
				xc := x[(n*s.Ci+ci)*g.inSz : (n*s.Ci+ci+1)*g.inSz]
				wc := w[(co*s.Ci+ci)*g.kSz : (co*s.Ci+ci+1)*g.kSz]
				for kd, spd := range g.sd {
					if od < spd.lo || od >= spd.hi {
						continue
					}
					xd := xc[(od*sd-pd+kd)*H*W:]
					for kh, sph := range g.sh {
						for oh := sph.lo; oh < sph.hi; oh++ {
							xrow := xd[(oh*sh-ph+kh)*W : (oh*sh-ph+kh+1)*W]
							yrow := yp[oh*OW : (oh+1)*OW]
							wt := wc[(kd*KH+kh)*KW : (kd*KH+kh+1)*KW]
							for kw, spw := range g.sw {
								if spw.lo >= spw.hi {
									continue
								}
								wv := wt[kw]
								if sw == 1 {
									axpy(wv, xrow[spw.lo-pw+kw:spw.hi-pw+kw], yrow[spw.lo:spw.hi])
									continue
								}
								for ow := spw.lo; ow < spw.hi; ow++ {
									yrow[ow] += wv * xrow[ow*sw-pw+kw]
								}
							}
						}
					}
				}
			}
		}
	})
}

// conv3dBackwardDataDirect computes dx = convᵀ(dy, w), the gradient of the forward convolution
// with respect to x (and ConvTranspose3d's forward pass). Work is split over (sample,
// input channel, input depth) planes; each gathers the dy rows that reach it.
func conv3dBackwardDataDirect(dy, w, dx []float32, s ConvShape) {
	g := newGeometry(s)
	D, H, W := s.In[0], s.In[1], s.In[2]
	OH, OW := s.Out[1], s.Out[2]
	KD, KH, KW := s.K[0], s.K[1], s.K[2]
	sd, sh, sw := s.Stride[0], s.Stride[1], s.Stride[2]
	pd, ph, pw := s.Pad[0], s.Pad[1], s.Pad[2]
	plane := H * W
	parallel(s.N*s.Ci*D, s.Co*g.kSz*OH*OW/max(sd, 1), func(lo, hi int) {
		for it := lo; it < hi; it++ {
			id := it % D
			nci := it / D
			n, ci := nci/s.Ci, nci%s.Ci
			xp := dx[nci*g.inSz+id*plane : nci*g.inSz+(id+1)*plane]
			clear(xp)
			for kd := range KD {
				// od·sd - pd + kd = id
				t := id + pd - kd
				if t < 0 || t%sd != 0 || t/sd >= s.Out[0] {
					continue
				}
				od := t / sd
				for co := range s.Co {
					dyp := dy[(n*s.Co+co)*g.outSz+od*OH*OW:]
					wc := w[(co*s.Ci+ci)*g.kSz+kd*KH*KW:]
					for kh, sph := range g.sh {
						for oh := sph.lo; oh < sph.hi; oh++ {
							dyrow := dyp[oh*OW : (oh+1)*OW]
							xrow := xp[(oh*sh-ph+kh)*W : (oh*sh-ph+kh+1)*W]
							wt := wc[kh*KW : (kh+1)*KW]
							for kw, spw := range g.sw {
								if spw.lo >= spw.hi {
									continue
								}
								wv := wt[kw]
								if sw == 1 {
									axpy(wv, dyrow[spw.lo:spw.hi], xrow[spw.lo-pw+kw:spw.hi-pw+kw])
									continue
								}
								for ow := spw.lo; ow < spw.hi; ow++ {
									xrow[ow*sw-pw+kw] += wv * dyrow[ow]
								}
							}
						}
					}
				}
			}
		}
	})
}

// conv3dBackwardWeightDirect computes dw[co,ci,k…] = Σ_{n,o…} dy[n,co,o…]·x[n,ci,o·stride-pad+k…]
// and, when db is not nil, db[co] = Σ dy[n,co,…]. Work is split over (co, ci) pairs; each
// sums row dot products in float32 and the rows in float64.
func conv3dBackwardWeightDirect(x, dy, dw, db []float32, s ConvShape) {
	g := newGeometry(s)
	H, W := s.In[1], s.In[2]
	OH, OW := s.Out[1], s.Out[2]
	KH, KW := s.K[1], s.K[2]
	sd, sh, sw := s.Stride[0], s.Stride[1], s.Stride[2]
	pd, ph, pw := s.Pad[0], s.Pad[1], s.Pad[2]
	parallel(s.Co*s.Ci, s.N*g.kSz*g.outSz, func(lo, hi int) {
		acc := make([]float64, g.kSz)
		for it := lo; it < hi; it++ {
			co, ci := it/s.Ci, it%s.Ci
			clear(acc)
			for n := range s.N {
				xc := x[(n*s.Ci+ci)*g.inSz : (n*s.Ci+ci+1)*g.inSz]
				dyc := dy[(n*s.Co+co)*g.outSz : (n*s.Co+co+1)*g.outSz]
				for kd, spd := range g.sd {
					for od := spd.lo; od < spd.hi; od++ {
						xd := xc[(od*sd-pd+kd)*H*W:]
						dyd := dyc[od*OH*OW:]
						for kh, sph := range g.sh {
							for oh := sph.lo; oh < sph.hi; oh++ {
								xrow := xd[(oh*sh-ph+kh)*W : (oh*sh-ph+kh+1)*W]
								dyrow := dyd[oh*OW : (oh+1)*OW]
								a := acc[(kd*KH+kh)*KW : (kd*KH+kh+1)*KW]
								for kw, spw := range g.sw {
									if spw.lo >= spw.hi {
										continue
									}
									var sum float32
									if sw == 1 {
										sum = dot(dyrow[spw.lo:spw.hi], xrow[spw.lo-pw+kw:spw.hi-pw+kw])
									} else {
										for ow := spw.lo; ow < spw.hi; ow++ {
											sum += dyrow[ow] * xrow[ow*sw-pw+kw]
										}
									}
									a[kw] += float64(sum)
								}
							}
						}
					}
				}
			}
			out := dw[it*g.kSz : (it+1)*g.kSz]
			for i, v := range acc {
				out[i] = float32(v)
			}
		}
	})
	if db != nil {
		for co := range s.Co {
			var sum float64
			for n := range s.N {
				sum += sum64(dy[(n*s.Co+co)*g.outSz : (n*s.Co+co+1)*g.outSz])
			}
			db[co] = float32(sum)
		}
	}
}

// dot is Σ a[i]·b[i] over equal-length slices, in float32.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
	}
	if i < len(a) {
		s0 += a[i] * b[i]
	}
	return s0 + s1
}

// axpy computes y += a·x over equal-length slices (a plain loop: the oracle depends on no
// kernel).
func axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}
