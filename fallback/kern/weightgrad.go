package kern

// backwardWeightDot computes dw with the dot-product kernel (kernel sets with a dot
// field). As dw[o][r] = Σ_k Xcol[r][k]·dY[o][k] reduces along output positions k, both
// operands are packed as rows contiguous in k — for stride 1 a copy of 16-float runs —
// and the kernel keeps partial sums in vector lanes, where the outer-product kernels
// would need every Xcol element transposed into a micro-panel.
func backwardWeightDot(x, dy, dw []float32, s ConvShape) {
	R, P, V := s.Ci*s.taps(), s.outSize(), s.inSize()
	dotMR, dotNR := ks.dmr, ks.dnr
	mPad := (R + dotMR - 1) / dotMR * dotMR
	nPad := (s.Co + dotNR - 1) / dotNR * dotNR
	workers := numWorkers()
	if 2*R*s.Co*s.N*P < smallWork {
		workers = 1
	}
	partSize := mPad * nPad
	partsP := getBuf(workers * partSize)
	defer putBuf(partsP)
	parts := *partsP
	clear(parts)

	// Pad the whole batch at once when it is small (the velocity model's), so that the
	// reduction runs over N·P positions in long chunks; else one sample at a time.
	ext := [3]int{s.In[0] + 2*s.Pad[0], s.In[1] + 2*s.Pad[1], s.In[2] + 2*s.Pad[2]}
	vol := ext[0] * ext[1] * ext[2]
	group := 1
	if s.N*s.Ci*vol <= 8<<20 {
		group = s.N
	}
	kTotal := group * P
	// Chunks: long enough that the kernel's final lane reduction is cheap (≤1024
	// positions), several per worker for balance.
	chunkLen := min(1024, max(64, (kTotal+4*workers-1)/(4*workers)))
	chunkLen = (chunkLen + 15) / 16 * 16
	nChunks := (kTotal + chunkLen - 1) / chunkLen

	aRowP := rowOffsets(grid(0, []int{s.Ci, s.K[0], s.K[1], s.K[2]},
		[]int{vol, ext[1] * ext[2], ext[2], 1}), R)
	defer intPool.Put(aRowP)
	aRow := *aRowP
	for n0 := 0; n0 < s.N; n0 += group {
		var src []float32
		var bufs []*[]float32
		if s.Pad == [3]int{} {
			src = x[n0*s.Ci*V:]
		} else {
			buf := getBuf(group * s.Ci * vol)
			bufs = append(bufs, buf)
			for g := range group {
				p, pb, _ := padded(x[(n0+g)*s.Ci*V:], s.Ci, s.In, s.Pad, s.Pad)
				copy((*buf)[g*s.Ci*vol:(g+1)*s.Ci*vol], p[:s.Ci*vol])
				if pb != nil {
					putBuf(pb)
				}
			}
			src = *buf
		}
		// Column k = (sample g, od, oh, ow) of Xcol and of dYᵀ.
		aCols := grid(0, []int{group, s.Out[0], s.Out[1], s.Out[2]},
			[]int{s.Ci * vol, s.Stride[0] * ext[1] * ext[2], s.Stride[1] * ext[2], s.Stride[2]})
		bCols := grid(n0*s.Co*P, []int{group, P}, []int{s.Co * P, 1})
		parallel(nChunks, workers, func(wi, ci int, ws *workspace) {
			part := parts[wi*partSize : (wi+1)*partSize]
			k0 := ci * chunkLen
			kc := min(kTotal, k0+chunkLen) - k0
			kcPad := (kc + 15) / 16 * 16
			ws.ints = growI(ws.ints, 2*kcPad+kcPad/8)
			coA, coB := ws.ints[:kc], ws.ints[kcPad:kcPad+kc]
			runs := ws.ints[2*kcPad : 2*kcPad+kcPad/16]
			aCols.fill(coA, k0)
			bCols.fill(coB, k0)
			ws.b = growF(ws.b, nPad*kcPad)
			ws.a = growF(ws.a, dotMR*kcPad)
			runsB := runs16(coB, runs)
			for o := range nPad {
				row := ws.b[o*kcPad : (o+1)*kcPad]
				if o >= s.Co {
					clear(row)
					continue
				}
				gatherRow(row, dy, o*P, coB, runsB)
			}
			runsA := runs16(coA, ws.ints[2*kcPad+kcPad/16:2*kcPad+kcPad/8])
			for r0 := 0; r0 < R; r0 += dotMR {
				for ii := range dotMR {
					row := ws.a[ii*kcPad : (ii+1)*kcPad]
					if r0+ii >= R {
						clear(row)
						continue
					}
					gatherRow(row, src, aRow[r0+ii], coA, runsA)
				}
				for j0 := 0; j0 < nPad; j0 += dotNR {
					ks.dot(kcPad/ks.dvec, ws.a, kcPad, ws.b[j0*kcPad:], kcPad, part[r0*nPad+j0:], nPad)
				}
			}
		})
		for _, b := range bufs {
			putBuf(b)
		}
	}
	for o := range s.Co {
		for r := range R {
			v := parts[r*nPad+o]
			for wi := 1; wi < workers; wi++ {
				v += parts[wi*partSize+r*nPad+o]
			}
			dw[o*R+r] = v
		}
	}
}

// runs16 returns the start offsets co[16t] of the whole 16-groups of co when every such
// group is contiguous (stride-1 rows whose width is a multiple of 16), else nil.
func runs16(co []int, dst []int) []int {
	n := len(co) / 16
	for t := range n {
		if !contiguous(co[16*t:], 16) {
			return nil
		}
		dst[t] = co[16*t]
	}
	return dst[:n]
}

// gatherRow sets row[kk] = src[base+co[kk]] for kk < len(co) and zeroes the rest of row,
// copying 16-float runs when runs (from runs16) is not nil.
func gatherRow(row, src []float32, base int, co, runs []int) {
	kk := 0
	if runs != nil && len(runs) > 0 {
		ks.rows(row[:16*len(runs)], src, runs, base, base)
		kk = 16 * len(runs)
	}
	s := src[base:]
	for ; kk < len(co); kk++ {
		row[kk] = s[co[kk]]
	}
	clear(row[len(co):])
}
