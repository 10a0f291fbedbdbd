package fallback

import (
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/latentad/latentad/compute"
)

// mustPanic runs f and requires a panic whose message contains want.
func mustPanic(t *testing.T, what, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: no panic", what)
		} else if s, _ := r.(string); !strings.Contains(s, want) {
			t.Errorf("%s: panic %v, want one containing %q", what, r, want)
		}
	}()
	f()
}

func canMap(t *testing.T) {
	if mem := sysMap(offHeapMin); mem == nil {
		t.Skip("no anonymous mappings here: every buffer is on the heap")
	} else if err := sysUnmap(mem); err != nil {
		t.Fatal(err)
	}
}

func TestAllocPlacesLargeBuffersOffHeap(t *testing.T) {
	canMap(t)
	d := &cpu{}
	small := d.Alloc(offHeapMin/4 - 1)
	if d.buffer(small).m != nil {
		t.Error("a tensor below the threshold was mapped")
	}
	large := d.Alloc(2, offHeapMin/4)
	b := d.buffer(large)
	if b.m == nil || len(b.m.mem) != 2*offHeapMin {
		t.Fatalf("a tensor of %d bytes is not in a mapping of its size", 4*large.Len())
	}
	if unsafe.SliceData(b.data) != (*float32)(unsafe.Pointer(unsafe.SliceData(b.m.mem))) {
		t.Error("the tensor's elements are not the mapping's memory")
	}
	got := make([]float32, large.Len())
	d.Download(large, got)
	if slices.ContainsFunc(got, func(v float32) bool { return v != 0 }) {
		t.Error("a fresh mapped tensor is not zero")
	}
	src := make([]float32, large.Len())
	for i := range src {
		src[i] = float32(i)
	}
	d.Upload(large, src)
	d.Download(large.Sample(1, 2), got[:large.Len()/2])
	if !slices.Equal(got[:large.Len()/2], src[large.Len()/2:]) {
		t.Error("a view of a mapped tensor reads other elements")
	}
	d.Release(small)
	d.Release(large)
}

func TestReleaseFreesOwnersOnly(t *testing.T) {
	canMap(t)
	d := &cpu{}
	x := d.Alloc(4, offHeapMin/4)
	b := d.buffer(x)
	part := x.Sample(1, 3)
	d.Release(part) // a view: nothing happens
	if b.released || b.m == nil {
		t.Fatal("releasing a view freed its buffer")
	}
	d.Fill(x, 1)

	before := mappedBytes()
	d.Release(x)
	if !b.released || b.m != nil || b.data != nil {
		t.Error("Release left the buffer in place")
	}
	if after := mappedBytes(); after > before-4*x.Len() {
		t.Errorf("mapped bytes %d → %d after releasing %d bytes", before, after, 4*x.Len())
	}
	d.Release(x) // a second Release does nothing
	mustPanic(t, "Fill after Release", "used after Release", func() { d.Fill(x, 2) })
	mustPanic(t, "a view after Release", "used after Release", func() { d.Fill(part, 2) })
	mustPanic(t, "Download after Release", "used after Release", func() { d.Download(x, make([]float32, x.Len())) })

	h := d.Alloc(3) // heap buffers follow the same rules
	d.Release(h)
	mustPanic(t, "a heap tensor after Release", "used after Release", func() { d.Fill(h, 2) })
}

// dropLarge allocates a mapped tensor and drops it without Release, returning its mapping.
func dropLarge(d *cpu) *mapping {
	return d.buffer(d.Alloc(offHeapMin / 2)).m
}

func isMapped(m *mapping) bool {
	mapped.Lock()
	defer mapped.Unlock()
	_, ok := mapped.all[m]
	return ok
}

// TestCollectUnmapsOnlyDropped: a collection unmaps the buffers nothing refers to, and
// leaves the others usable.
func TestCollectUnmapsOnlyDropped(t *testing.T) {
	canMap(t)
	d := &cpu{}
	kept := d.Alloc(offHeapMin / 2)
	d.Fill(kept, 3)
	dropped := dropLarge(d)
	collect()
	if isMapped(dropped) {
		t.Error("a dropped buffer is still mapped after a collection")
	}
	if !isMapped(d.buffer(kept).m) {
		t.Fatal("a live buffer was unmapped")
	}
	if got := compute.ToHost(kept); got[0] != 3 || got[len(got)-1] != 3 {
		t.Error("a live buffer lost its contents")
	}
	d.Release(kept)
}

// TestDroppedBuffersStayBounded: code that never releases its tensors must not grow the
// mappings without bound, although the collector does not see them.
func TestDroppedBuffersStayBounded(t *testing.T) {
	canMap(t)
	d := &cpu{}
	const size = 8 << 20
	for range 100 { // 800 MiB if nothing were unmapped (untouched, so not resident)
		d.Alloc(size / 4)
	}
	if m := mappedBytes(); m > 2*firstCollect+2*size+64<<20 {
		t.Errorf("%d MiB still mapped after dropping 100 tensors of 8 MiB", m>>20)
	}
}
