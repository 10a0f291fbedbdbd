package kern

// backwardWeightDot computes dw with the dot-product kernel (kernel sets with a dot
// field). As dw[o][r] = Σ_k Xcol[r][k]·dY[o][k] reduces along output positions k, both
// operands are packed as rows contiguous in k — for stride 1 a copy of 16-float runs —
// and the kernel keeps partial sums in vector lanes, where the outer-product kernels
// would need every Xcol element transposed into a micro-panel.
//
// With db, A gets a last row of ones, so that row of the product is db.
func backwardWeightDot(x, dy, dw, db []float32, s ConvShape) {
	R, P, V := s.Ci*s.taps(), s.outSize(), s.inSize()
	dotMR, dotNR := ks.dmr, ks.dnr
	rows := R
	if db != nil {
		rows = R + 1
	}
	mPad := (rows + dotMR - 1) / dotMR * dotMR
	nPad := (s.Co + dotNR - 1) / dotNR * dotNR
	workers := gradWorkers(s)
	partSize := mPad * nPad
	partsP := gradParts(partSize)
	defer putBuf(partsP)
	parts := *partsP

	// Pad the whole batch at once when it is small (the velocity model's), so that the
	// reduction runs over N·P positions in long chunks; else one sample at a time.
	ext := [3]int{s.In[0] + 2*s.Pad[0], s.In[1] + 2*s.Pad[1], s.In[2] + 2*s.Pad[2]}
	vol := ext[0] * ext[1] * ext[2]
	group := batchGroup(s.N, s.Ci, s.In, s.Pad, s.Pad)
	kTotal := group * P
	// Chunks: long enough that the kernel's final lane reduction is cheap, short enough
	// (≤512 positions) that an A panel of dmr rows stays in L1; several per slot.
	chunkLen := min(512, max(256, (kTotal+2*gradSlots-1)/(2*gradSlots)))
	chunkLen = (chunkLen + 15) / 16 * 16
	nChunks := (kTotal + chunkLen - 1) / chunkLen

	aRowP := rowOffsets(grid(0, []int{s.Ci, s.K[0], s.K[1], s.K[2]},
		[]int{vol, ext[1] * ext[2], ext[2], 1}), R)
	defer intPool.Put(aRowP)
	aRow := *aRowP
	for n0 := 0; n0 < s.N; n0 += group {
		// Samples of a group are consecutive channels of one padded volume array.
		src, buf, _ := padded(x[n0*s.Ci*V:], group*s.Ci, s.In, s.Pad, s.Pad)
		// Column k = (sample g, od, oh, ow) of Xcol and of dYᵀ.
		aCols := grid(0, []int{group, s.Out[0], s.Out[1], s.Out[2]},
			[]int{s.Ci * vol, s.Stride[0] * ext[1] * ext[2], s.Stride[1] * ext[2], s.Stride[2]})
		bCols := grid(n0*s.Co*P, []int{group, P}, []int{s.Co * P, 1})
		slotted(nChunks, workers, func(wi, ci int, ws *workspace) {
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
			runsB, s2B := runs16(coB, runs)
			for o := range nPad {
				row := ws.b[o*kcPad : (o+1)*kcPad]
				if o >= s.Co {
					clear(row)
					continue
				}
				gatherRow(row, dy, o*P, coB, runsB, s2B)
			}
			runsA, s2A := runs16(coA, ws.ints[2*kcPad+kcPad/16:2*kcPad+kcPad/8])
			for r0 := 0; r0 < rows; r0 += dotMR {
				for ii := range dotMR {
					row := ws.a[ii*kcPad : (ii+1)*kcPad]
					if r0+ii >= R {
						clear(row)
						if r0+ii < rows { // the ones row: its product with dY is db
							for kk := range kc {
								row[kk] = 1
							}
						}
						continue
					}
					gatherRow(row, src, aRow[r0+ii], coA, runsA, s2A)
				}
				for j0 := 0; j0 < nPad; j0 += dotNR {
					ks.dot(kcPad/ks.dvec, ws.a, kcPad, ws.b[j0*kcPad:], kcPad, part[r0*nPad+j0:], nPad)
				}
			}
		})
		if buf != nil {
			putBuf(buf)
		}
	}
	sumSlots(parts, partSize, rows, nPad, s.Co, func(r, o int, v float32) {
		if r < R {
			dw[o*R+r] = v
		} else {
			db[o] = v
		}
	})
}

// sumSlots adds the gradSlots partial results (rows × nPad, slot i at parts[i·partSize:])
// element by element in slot order and hands each sum of the first co columns to put;
// rows in parallel, each read along its contiguous columns (the autoencoder's weight
// gradient spent a quarter of its time here, column by column on one core).
func sumSlots(parts []float32, partSize, rows, nPad, co int, put func(r, o int, v float32)) {
	const blk = 64
	parallel((rows+blk-1)/blk, numWorkers(), func(_, b int, _ *workspace) {
		for r := b * blk; r < min(rows, (b+1)*blk); r++ {
			row := parts[r*nPad : r*nPad+co]
			for o, v := range row {
				for wi := 1; wi < gradSlots; wi++ {
					v += parts[wi*partSize+r*nPad+o]
				}
				put(r, o, v)
			}
		}
	})
}

// runs16 returns the start offsets co[16t] of the whole 16-groups of co when every such
// group is contiguous (stride-1 rows whose width is a multiple of 16) or, when the kernel
// set can pack them, every group has stride 2 (then stride2 is true); else no runs.
func runs16(co []int, dst []int) (runs rowSet, stride2 bool) {
	n := len(co) / 16
	if n == 0 {
		return rowSet{}, false
	}
	step := 1
	if co[1]-co[0] == 2 && ks.runs2 != nil {
		step = 2
	}
	for t := range n {
		if !strided16(co[16*t:], step) {
			return rowSet{}, false
		}
		dst[t] = co[16*t]
	}
	return newRowSet(dst[:n]), step == 2
}

// gatherRow sets row[kk] = src[base+co[kk]] for kk < len(co) and zeroes the rest of row,
// copying 16-float runs (stride 1, or 2 when stride2) when runs is not empty.
func gatherRow(row, src []float32, base int, co []int, runs rowSet, stride2 bool) {
	kk := 0
	if n := len(runs.off); n > 0 {
		if !stride2 {
			ks.rows(row[:16*n], src, runs, base, base)
			kk = 16 * n
		} else if ks.runs2(row[:16*n], src, runs, base) {
			kk = 16 * n
		}
	}
	s := src[base:]
	for ; kk < len(co); kk++ {
		row[kk] = s[co[kk]]
	}
	clear(row[len(co):])
}

// gradWorkers is the number of workers for a direct weight gradient: one when it is too
// small to split.
func gradWorkers(s ConvShape) int {
	if 2*s.Ci*s.taps()*s.Co*s.N*s.outSize() < smallWork {
		return 1
	}
	return numWorkers()
}

// gradParts returns gradSlots zeroed partial results of partSize floats each, pooled.
func gradParts(partSize int) *[]float32 {
	p := getBuf(gradSlots * partSize)
	clear(*p)
	return p
}

// biasGrad sets db[o] = Σ_n,p dy[n,o,p] for dy of n samples, co channels and p positions,
// each channel summed in float64 and rounded once (so in any order of channels).
func biasGrad(dy, db []float32, n, co, p int) {
	parallel(co, numWorkers(), func(_, o int, _ *workspace) {
		var acc float64
		for sn := range n {
			for _, v := range dy[(sn*co+o)*p : (sn*co+o+1)*p] {
				acc += float64(v)
			}
		}
		db[o] = float32(acc)
	})
}
