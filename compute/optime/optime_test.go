package optime_test

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/compute/optime"
	"github.com/latentad/latentad/fallback"
)

// TestTimesEveryOp fails when compute.Device gains an op that Device does not wrap (it
// would run untimed, through the embedded device): every method but the bookkeeping ones
// must be declared on *optime.Device itself.
func TestTimesEveryOp(t *testing.T) {
	untimed := []string{"Name", "Alloc", "Release", "Upload", "Download", "Sync"}
	iface := reflect.TypeFor[compute.Device]()
	own := reflect.TypeFor[*optime.Device]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		if slices.Contains(untimed, name) {
			continue
		}
		m, ok := own.MethodByName(name)
		// A promoted method's wrapper is generated code without a source position of ours.
		if !ok || !strings.HasSuffix(funcFile(m), "optime.go") {
			t.Errorf("optime.Device does not time %s", name)
		}
	}
}

// funcFile returns the source file of a method's code.
func funcFile(m reflect.Method) string {
	f := runtime.FuncForPC(m.Func.Pointer())
	if f == nil {
		return ""
	}
	file, _ := f.FileLine(f.Entry())
	return file
}

// TestForwardsAndCounts checks that wrapped ops compute what the device computes and are
// counted per op and shapes.
func TestForwardsAndCounts(t *testing.T) {
	dev := fallback.New()
	od := optime.Wrap(dev, false)
	x := compute.FromHost(od, []float32{-1, 2, -3, 4}, 2, 2)
	y := od.Alloc(2, 2)
	for range 3 {
		od.ActForward(compute.ReLU, x, y)
	}
	od.AXPY(2, x, y)
	got := make([]float32, 4)
	od.Download(y, got)
	if want := []float32{-2, 6, -6, 12}; !slices.Equal(got, want) {
		t.Fatalf("relu then axpy through optime = %v, want %v", got, want)
	}
	stats := od.Stats()
	calls := map[string]int{}
	for _, s := range stats {
		calls[s.Op] = s.Calls
		if s.Total <= 0 {
			t.Errorf("%s: total %v, want > 0", s.Op, s.Total)
		}
	}
	if calls["ActForward(relu) 2x2"] != 3 || calls["AXPY 2x2"] != 1 || len(calls) != 2 {
		t.Fatalf("stats %v, want 3 ActForward(relu) 2x2 and 1 AXPY 2x2", calls)
	}
	od.Reset()
	if len(od.Stats()) != 0 {
		t.Fatal("Reset left stats behind")
	}
}
