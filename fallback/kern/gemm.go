package kern

import (
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// Blocking parameters: a KC×NC panel of B stays in L2/L3, an MC×KC block of A in L2, one
// B micro-panel (KC×32 floats = 24 KiB for AVX-512) in L1 beside an A micro-panel. KC =
// 192 measured 5–10% faster than 256 with the AVX-512 kernels on Zen 5 (48 KiB L1).
const (
	maxMR   = 12 // largest micro-kernel panel shape of any kernel set
	maxNR   = 32
	kcBlock = 192
	mcBlock = 144 // multiple of every kernel set's mr
	ncBlock = 256
)

// axis maps a flat index along one GEMM dimension to an element offset. The index is
// split in mixed radix over dims (last fastest) and offset = base + Σ digit·stride.
// This one form describes plain matrices, transposes and the implicit im2col view of a
// padded volume, so a single packing and driver serve every convolution direction.
type axis struct {
	base    int
	dims    [5]int
	strides [5]int
}

// linear is the axis i ↦ base + i·stride, i < n.
func linear(n, stride, base int) axis {
	return axis{base: base, dims: [5]int{1, 1, 1, 1, n}, strides: [5]int{0, 0, 0, 0, stride}}
}

// grid is an axis over up to four nested extents (slowest first).
func grid(base int, dims []int, strides []int) axis {
	a := axis{base: base, dims: [5]int{1, 1, 1, 1, 1}}
	off := 5 - len(dims)
	for i := range dims {
		a.dims[off+i] = dims[i]
		a.strides[off+i] = strides[i]
	}
	return a
}

// fill writes the offsets of indices start, start+1, … into dst.
func (a *axis) fill(dst []int, start int) {
	if len(dst) == 0 {
		return
	}
	var d [5]int
	rem := start
	for i := 4; i >= 0; i-- {
		d[i] = rem % a.dims[i]
		rem /= a.dims[i]
	}
	off := a.base
	for i := range d {
		off += d[i] * a.strides[i]
	}
	for t := range dst {
		dst[t] = off
		i := 4
		d[4]++
		off += a.strides[4]
		for i > 0 && d[i] == a.dims[i] {
			off -= d[i] * a.strides[i]
			d[i] = 0
			i--
			d[i]++
			off += a.strides[i]
		}
	}
}

// mat is a gathered matrix: element (i, j) = data[rows(i) + cols(j)].
type mat struct {
	data       []float32
	rows, cols axis
}

// contiguous reports whether off[0..n-1] are consecutive.
func contiguous(off []int, n int) bool {
	off = off[:n]
	for j := 1; j < n; j++ {
		if off[j] != off[0]+j {
			return false
		}
	}
	return true
}

// strided16 reports whether off[j] = off[0] + stride·j for j < 16.
func strided16(off []int, stride int) bool {
	off = off[:16]
	for j := 1; j < 16; j++ {
		if off[j] != off[0]+stride*j {
			return false
		}
	}
	return true
}

// packA packs rows ro (len mc) × columns co (len kc) of src, scaled by alpha, into
// micro-panels of mr rows: panel p holds kc groups of mr values; missing rows are zero.
func packA(dst, src []float32, ro, co []int, alpha float32) {
	mc, kc, mr := len(ro), len(co), ks.mr
	for p := 0; p < mc; p += mr {
		h := min(mr, mc-p)
		d := dst[(p/mr)*kc*mr : (p/mr+1)*kc*mr]
		for ii := 0; ii < h; ii++ {
			s := src[ro[p+ii]:]
			if alpha == 1 {
				for kk, c := range co {
					d[kk*mr+ii] = s[c]
				}
			} else {
				for kk, c := range co {
					d[kk*mr+ii] = alpha * s[c]
				}
			}
		}
		for ii := h; ii < mr; ii++ {
			for kk := range kc {
				d[kk*mr+ii] = 0
			}
		}
	}
}

// packB packs rows ro (len kc) × columns co (len nc) of src into micro-panels of nr
// columns (panel q holds kc groups of nr values); missing columns are zero.
//
// A last row offset of onesRow packs a row of ones: with the bias as A's last column,
// the GEMM adds the bias for free instead of in another pass over C.
func packB(dst, src []float32, ro, co []int) {
	kc, nc, nr := len(ro), len(co), ks.nr
	ones := kc > 0 && ro[kc-1] == onesRow
	if ones {
		ro = ro[:kc-1]
	}
	rs := newRowSet(ro)
	for q := 0; q < nc; q += nr {
		w := min(nr, nc-q)
		d := dst[(q/nr)*kc*nr : (q/nr+1)*kc*nr]
		if ones {
			last := d[(kc-1)*nr : kc*nr]
			for jj := range last {
				last[jj] = 0
				if jj < w {
					last[jj] = 1
				}
			}
		}
		if w == nr && contiguous(co[q:], 16) && (nr == 16 || contiguous(co[q+16:], 16)) {
			// The common case (stride-1 rows of a volume): per row, nr/16 runs of 16
			// consecutive floats.
			ks.rows(d[:len(ro)*nr], src, rs, co[q], co[q+nr-16])
			continue
		}
		if ks.rows2 != nil && w == nr && strided16(co[q:], 2) && strided16(co[q+16:], 2) &&
			ks.rows2(d[:len(ro)*nr], src, rs, co[q], co[q+16]) {
			continue // stride-2 convolution rows
		}
		cq := co[q : q+w]
		for kk, r := range ro {
			dk := d[kk*nr : kk*nr+nr]
			s := src[r:]
			for jj, c := range cq {
				dk[jj] = s[c]
			}
			for jj := w; jj < nr; jj++ {
				dk[jj] = 0
			}
		}
	}
}

// onesRow marks a packed B row of ones (see packB).
const onesRow = math.MinInt

// packRowsGo packs, for every kk, 16 floats from src[ro[kk]+c0] and (nr = 32) 16 from
// src[ro[kk]+c1] into dst[kk·nr:]; len(dst) = len(ro)·nr.
func packRowsGo(dst, src []float32, rs rowSet, c0, c1 int) {
	nr := len(dst) / max(1, len(rs.off))
	for kk, r := range rs.off {
		copy(dst[kk*nr:kk*nr+16], src[r+c0:r+c0+16])
		if nr == 32 {
			copy(dst[kk*nr+16:kk*nr+32], src[r+c1:r+c1+16])
		}
	}
}

// workspace is one worker's scratch, reused across calls through getWS/putWS.
type workspace struct {
	a, b  []float32
	ints  []int
	tile  [maxMR * maxNR]float32
	flt64 []float64
}

// wsFree is a plain free list rather than a sync.Pool: there are only ever as many
// workspaces as concurrent workers, and keeping them across GCs means steady-state
// training never regrows them.
var wsFree struct {
	sync.Mutex
	list []*workspace
}

func getWS() *workspace {
	wsFree.Lock()
	defer wsFree.Unlock()
	if n := len(wsFree.list); n > 0 {
		ws := wsFree.list[n-1]
		wsFree.list = wsFree.list[:n-1]
		return ws
	}
	return new(workspace)
}

func putWS(ws *workspace) {
	wsFree.Lock()
	wsFree.list = append(wsFree.list, ws)
	wsFree.Unlock()
}

// growF and growI resize workspace slices, rounding capacity up to a power of two so a
// workspace settles on its largest size after a few calls.
func growF(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n, 1<<bits.Len(uint(n-1)))
	}
	return s[:n]
}

func growI(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n, 1<<bits.Len(uint(n-1)))
	}
	return s[:n]
}

// bufFree holds large float32 scratch (padded volumes, packed weights, partial sums) by
// power-of-two capacity class, so a request is served by any buffer of its class. It is
// a plain free list, not a sync.Pool: pooled buffers put back on one P are invisible to
// a Get on another, which made every other training step reallocate. Buffers are kept
// for the life of the process (a training run reuses the same sizes every step), up to
// maxKeptClass.
var bufFree struct {
	sync.Mutex
	class [48][]*[]float32
}

func getBuf(n int) *[]float32 {
	class := bits.Len(uint(max(n, 1) - 1))
	bufFree.Lock()
	if l := bufFree.class[class]; len(l) > 0 {
		p := l[len(l)-1]
		bufFree.class[class] = l[:len(l)-1]
		bufFree.Unlock()
		*p = (*p)[:n]
		return p
	}
	bufFree.Unlock()
	s := make([]float32, n, 1<<class)
	return &s
}

// maxKeptClass caps what bufFree keeps: buffers above 2²⁴ floats (64 MiB; the
// autoencoder's padded 16-channel full-resolution volume) go back to the GC, so that a
// process that encoded volumes does not hold that memory for the rest of its life.
const maxKeptClass = 24

func putBuf(p *[]float32) {
	class := bits.Len(uint(cap(*p) - 1))
	if cap(*p) != 1<<class || class > maxKeptClass {
		return
	}
	bufFree.Lock()
	bufFree.class[class] = append(bufFree.class[class], p)
	bufFree.Unlock()
}

// macro multiplies a packed mc×kc block of A by a packed kc×nc block of B into C, whose
// element (i, j) lives at c[crow[i]+ccol[j]]. Tiles whose 16 columns are contiguous and
// whose rows are evenly spaced go straight to C; others (edges, scattered outputs) go
// through a 6×16 tile.
func macro(ap, bp []float32, kc int, c []float32, crow, ccol []int, acc bool, tile *[maxMR * maxNR]float32) {
	mc, nc, mr, nr := len(crow), len(ccol), ks.mr, ks.nr
	for q := 0; q < nc; q += nr {
		w := min(nr, nc-q)
		b := bp[(q/nr)*kc*nr:]
		direct := w == nr && contiguous(ccol[q:], nr)
		for p := 0; p < mc; p += mr {
			h := min(mr, mc-p)
			a := ap[(p/mr)*kc*mr:]
			ldc := 0
			if direct {
				if h > 1 {
					ldc = crow[p+1] - crow[p]
					for ii := 2; ii < h; ii++ {
						if crow[p+ii]-crow[p+ii-1] != ldc {
							ldc = -1
						}
					}
				}
				if ldc >= 0 {
					ks.micro(h, kc, a, b, c[crow[p]+ccol[q]:], ldc, acc)
					continue
				}
			}
			ks.micro(mr, kc, a, b, tile[:], nr, false)
			for ii := 0; ii < h; ii++ {
				t := tile[ii*nr : ii*nr+w]
				r := crow[p+ii]
				if acc {
					for jj, v := range t {
						c[r+ccol[q+jj]] += v
					}
				} else {
					for jj, v := range t {
						c[r+ccol[q+jj]] = v
					}
				}
			}
		}
	}
}

// parallel runs fn over chunks 0…n-1 on up to workers goroutines (the caller's among
// them); chunks are taken from a shared counter so a core slowed by other load takes
// fewer. fn gets its worker index (< workers) and a workspace. (Persistent spinning
// workers, as OpenMP uses, measured no better on this shared machine and worse under
// load, so each call starts its goroutines.)
func parallel(n, workers int, fn func(worker, chunk int, ws *workspace)) {
	workers = max(1, min(workers, n))
	var next atomic.Int64
	run := func(w int) {
		ws := getWS()
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				break
			}
			fn(w, i, ws)
		}
		putWS(ws)
	}
	if workers == 1 {
		run(0)
		return
	}
	var wg sync.WaitGroup
	wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go func() {
			defer wg.Done()
			run(w)
		}()
	}
	run(0)
	wg.Wait()
}

func numWorkers() int { return runtime.GOMAXPROCS(0) }

// gradSlots is the number of partial sums a weight gradient splits its reduction into. It is
// fixed, not the worker count, so that the result is the same bit for bit on any number of
// cores and under any scheduling (resumed training runs then equal uninterrupted ones).
const gradSlots = 8

// slotted runs fn over chunks 0…n-1 such that chunk c always adds into slot c % gradSlots and
// each slot sees its chunks in increasing order on one goroutine.
func slotted(n, workers int, fn func(slot, chunk int, ws *workspace)) {
	parallel(min(n, gradSlots), workers, func(_, slot int, ws *workspace) {
		for c := slot; c < n; c += gradSlots {
			fn(slot, c, ws)
		}
	})
}

// smallWork is the FLOP count below which a GEMM runs on one goroutine.
const smallWork = 1 << 21

// packedA is A packed once for a whole GEMM: k-block pb starts at pb·kcBlock·mPad and
// holds mPad/mr micro-panels of kc·mr values.
type packedA struct {
	m, k, mPad int
	buf        *[]float32
}

func packWhole(a mat, m, k int, alpha float32) packedA {
	mPad := (m + ks.mr - 1) / ks.mr * ks.mr
	pa := packedA{m: m, k: k, mPad: mPad, buf: getBuf(max(1, mPad*k))}
	ws := getWS()
	ws.ints = growI(ws.ints, m+kcBlock)
	ro, co := ws.ints[:m], ws.ints[m:]
	a.rows.fill(ro, 0)
	for pb, pc := 0, 0; pc < k; pb, pc = pb+1, pc+kcBlock {
		kc := min(kcBlock, k-pc)
		a.cols.fill(co[:kc], pc)
		packA((*pa.buf)[pb*kcBlock*mPad:], a.data, ro, co[:kc], alpha)
	}
	putWS(ws)
	return pa
}

func (pa packedA) release() { putBuf(pa.buf) }

// gemmN computes C (+)= A·B with A pre-packed and shared; workers take chunks of
// columns, pack their B panels from the gathered matrix b and write their columns of C.
type gemmN struct {
	a    packedA
	n    int
	b    mat // element (k, j)
	kOff []int
	c    []float32
	crow []int
	ccol axis
	acc  bool
}

func (g *gemmN) run(workers int) {
	m, n, k := g.a.m, g.n, g.a.k
	if m == 0 || n == 0 {
		return
	}
	chunk := ncBlock
	if 2*m*n*k < smallWork {
		workers = 1
	} else {
		// Several chunks per worker so that a core slowed by other load takes fewer.
		per := (n + 4*workers - 1) / (4 * workers)
		chunk = min(ncBlock, max(4*ks.nr, (per+ks.nr-1)/ks.nr*ks.nr))
	}
	nChunks := (n + chunk - 1) / chunk
	parallel(nChunks, workers, func(_, ci int, ws *workspace) {
		j0 := ci * chunk
		g.chunk(j0, min(n, j0+chunk), ws)
	})
}

func (g *gemmN) chunk(j0, j1 int, ws *workspace) {
	m, k := g.a.m, g.a.k
	nc := j1 - j0
	ncPad := (nc + ks.nr - 1) / ks.nr * ks.nr
	ws.ints = growI(ws.ints, 2*nc)
	bcol, ccol := ws.ints[:nc], ws.ints[nc:2*nc]
	g.b.cols.fill(bcol, j0)
	g.ccol.fill(ccol, j0)
	if k == 0 {
		if !g.acc {
			for _, r := range g.crow {
				for _, cj := range ccol {
					g.c[r+cj] = 0
				}
			}
		}
	}
	if ks.direct != nil && runs32(bcol) {
		g.chunkDirect(bcol, ccol, ws)
		return
	}
	ws.b = growF(ws.b, min(kcBlock, k)*ncPad)
	for pb, pc := 0, 0; pc < k; pb, pc = pb+1, pc+kcBlock {
		kc := min(kcBlock, k-pc)
		packB(ws.b, g.b.data, g.kOff[pc:pc+kc], bcol)
		blk := (*g.a.buf)[pb*kcBlock*g.a.mPad:]
		for ic := 0; ic < m; ic += mcBlock {
			mc := min(mcBlock, m-ic)
			macro(blk[ic*kc:], ws.b, kc, g.c, g.crow[ic:ic+mc], ccol, g.acc || pc > 0, &ws.tile)
		}
	}
}

// kOffsets returns the row offsets of b for k = 0…k-1 in a pooled int slice.
func rowOffsets(b axis, k int) *[]int {
	p := intPool.Get().(*[]int)
	*p = growI(*p, k)
	b.fill(*p, 0)
	return p
}

var intPool = sync.Pool{New: func() any { return new([]int) }}

// runs32 reports whether every 32-column panel of bcol is whole and made of two runs of
// 16 consecutive offsets.
func runs32(bcol []int) bool {
	if len(bcol)%32 != 0 {
		return false
	}
	for q := 0; q < len(bcol); q += 16 {
		if !contiguous(bcol[q:], 16) {
			return false
		}
	}
	return true
}

var ones32 = [32]float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}

// chunkDirect is chunk with B rows read in place by the direct micro-kernels: each B row
// is loaded once per A micro-panel instead of being packed first, which measured 5–10%
// faster at the models' shapes (M = 16…128) and up to 40% for short M. A bias row of
// ones (onesRow) becomes one extra rank-1 update per tile.
func (g *gemmN) chunkDirect(bcol, ccol []int, ws *workspace) {
	m, k, mr, nr := g.a.m, g.a.k, ks.mr, ks.nr
	for pb, pc := 0, 0; pc < k; pb, pc = pb+1, pc+kcBlock {
		kc := min(kcBlock, k-pc)
		ro := g.kOff[pc : pc+kc]
		ones := ro[kc-1] == onesRow
		kd := kc
		if ones {
			kd--
		}
		rs := newRowSet(ro[:kd])
		blk := (*g.a.buf)[pb*kcBlock*g.a.mPad:]
		acc := g.acc || pc > 0
		for q := 0; q < len(bcol); q += nr {
			c0, c1 := bcol[q], bcol[q+16]
			direct := contiguous(ccol[q:], nr)
			for p := 0; p < m; p += mr {
				h := min(mr, m-p)
				a := blk[p*kc:]
				ldc := 0
				if direct && h > 1 {
					ldc = g.crow[p+1] - g.crow[p]
					for ii := 2; ii < h; ii++ {
						if g.crow[p+ii]-g.crow[p+ii-1] != ldc {
							ldc = -1
						}
					}
				}
				var c []float32
				hh, accT := h, acc
				if direct && ldc >= 0 {
					c = g.c[g.crow[p]+ccol[q]:]
				} else {
					c, ldc, hh, accT = ws.tile[:], nr, mr, false
				}
				done := false
				if kd > 0 {
					ks.direct(hh, kd, a, g.b.data, rs, c0, c1, c, ldc, accT)
					done = true
				}
				if ones {
					ks.micro(hh, 1, a[kd*mr:], ones32[:nr], c, ldc, accT || done)
				}
				if &c[0] != &ws.tile[0] {
					continue
				}
				for ii := 0; ii < h; ii++ {
					t := ws.tile[ii*nr : ii*nr+nr]
					r := g.crow[p+ii]
					if acc {
						for jj, v := range t {
							g.c[r+ccol[q+jj]] += v
						}
					} else {
						for jj, v := range t {
							g.c[r+ccol[q+jj]] = v
						}
					}
				}
			}
		}
	}
}
