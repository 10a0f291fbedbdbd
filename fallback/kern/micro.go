package kern

// kernelSet is one micro-kernel family: its panel shape (mr rows of packed A, nr columns
// of packed B), the kernel and the row-copy used to pack contiguous B panels.
type kernelSet struct {
	name   string
	mr, nr int
	// micro computes the h×nr block C = (acc ? C : 0) + Σ_k a[k·mr+i]·b[k·nr+j] for
	// i < h ≤ mr from packed panels; C's rows are ldc apart.
	micro func(h, kc int, a, b, c []float32, ldc int, acc bool)
	// rows packs, for every kk, src[ro[kk]+c0 : +16] (and, when nr = 32,
	// src[ro[kk]+c1 : +16]) into dst[kk·nr:]; len(dst) = len(ro)·nr.
	rows func(dst, src []float32, ro rowSet, c0, c1 int)
	// rows2, when not nil, is rows for runs of 16 floats taken at stride 2 (nr = 32
	// only); it reports false, packing nothing, when a run would read past src.
	rows2 func(dst, src []float32, ro rowSet, c0, c1 int) bool
	// runs2, when not nil, packs 16 floats taken at stride 2 from src[ro[i]+c0] into
	// dst[16i:] for every i; it reports false, packing nothing, when a run would read
	// past src.
	runs2 func(dst, src []float32, ro rowSet, c0 int) bool
	// direct, when not nil, is micro with B read in place: row k is 16 floats at
	// src[ro[k]+c0] and 16 at src[ro[k]+c1] (nr = 32), len(ro.off) = kc.
	direct func(h, kc int, a, src []float32, ro rowSet, c0, c1 int, c []float32, ldc int, acc bool)
	// dot, when not nil, adds C[i][j] += Σ_k a[i·lda+k]·b[j·ldb+k] for i < dmr,
	// j < dnr, k < dvec·kv: the weight gradient's kernel (see backwardWeightDot).
	dot            func(kv int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int)
	dmr, dnr, dvec int
	// wgIn and wgOut are the Winograd transforms of 8 tiles (see wgInGo, wgOutGo);
	// winograd says they are fast enough for the Winograd path to beat the direct one,
	// winogradWeight the same of the weight gradient (whose GEMM needs 8×32 panels).
	wgIn                     func(src []float32, l, row, plane int, dst []float32, ds int)
	wgDy                     func(src []float32, l, row, plane int, dst []float32, ds int)
	wgT8                     func(src, dst []float32, dsig, dt int)
	wgFilt                   func(g8 *[27 * 8]float32, dst []float32, ds int)
	wgOut                    func(m []float32, ms int, bias float32, out *[64]float32)
	winograd, winogradWeight bool
}

// rowSet is a list of row offsets with its extremes, computed once per packing call so
// that the assembly packers check their bounds per panel in O(1).
type rowSet struct {
	off    []int
	lo, hi int
}

func newRowSet(off []int) rowSet {
	rs := rowSet{off: off}
	if len(off) > 0 {
		rs.lo, rs.hi = off[0], off[0]
		for _, r := range off {
			rs.lo, rs.hi = min(rs.lo, r), max(rs.hi, r)
		}
	}
	return rs
}

var goKernels = kernelSet{name: "go", mr: 6, nr: 16, micro: kernelGo, rows: packRowsGo, wgIn: wgInGo, wgDy: wgDyGo, wgT8: wgT8Go, wgFilt: wgFiltGo, wgOut: wgOutGo}

// ks is the kernel set in use: the fastest this build and CPU support (see init in
// micro_amd64.go); tests switch it with useKernels.
var ks = bestKernels()

// KernelName names the micro-kernels in use ("avx512", "avx2" or "go"), for logs and
// benchmark reports.
func KernelName() string { return ks.name }

// kernelGo is the portable 6×16 micro-kernel.
func kernelGo(h, kc int, a, b, c []float32, ldc int, acc bool) {
	const mr, nr = 6, 16
	var t [mr][nr]float32
	a = a[:kc*mr]
	b = b[:kc*nr]
	for k := range kc {
		bk := (*[nr]float32)(b[k*nr : k*nr+nr])
		ak := (*[mr]float32)(a[k*mr : k*mr+mr])
		for i := range h {
			ai := ak[i]
			ti := &t[i]
			for j := range nr {
				ti[j] += ai * bk[j]
			}
		}
	}
	for i := range h {
		row := (*[nr]float32)(c[i*ldc : i*ldc+nr])
		if acc {
			for j := range nr {
				row[j] += t[i][j]
			}
		} else {
			*row = t[i]
		}
	}
}
