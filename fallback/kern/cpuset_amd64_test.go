//go:build !purego

package kern

import (
	"os"
	"testing"
)

func TestCapSets(t *testing.T) {
	for _, c := range []struct {
		v                 string
		avx2, avx512      bool
		wantAVX2, want512 bool
		ok                bool
	}{
		{"", true, true, true, true, true},
		{"avx512", true, true, true, true, true},
		{"avx512", true, false, true, false, true}, // never more than the CPU has
		{"avx2", true, true, true, false, true},
		{"avx2", false, false, false, false, true},
		{"go", true, true, false, false, true},
		{"bogus", true, true, true, true, false},
	} {
		a, b, ok := capSets(c.v, c.avx2, c.avx512)
		if a != c.wantAVX2 || b != c.want512 || ok != c.ok {
			t.Errorf("capSets(%q, %v, %v) = %v, %v, %v; want %v, %v, %v", c.v, c.avx2, c.avx512, a, b, ok, c.wantAVX2, c.want512, c.ok)
		}
	}
}

// TestForcedSetInUse checks that make test's LATENTAD_CPU runs really use the set they
// name, so a green run under LATENTAD_CPU=avx2 means the AVX2 kernels were exercised.
func TestForcedSetInUse(t *testing.T) {
	want := os.Getenv("LATENTAD_CPU")
	switch {
	case want != "avx2" && want != "go":
		t.Skip("LATENTAD_CPU is not avx2 or go")
	case want == "avx2" && !(cpuHasAVX2()):
		t.Skip("this CPU has no AVX2/FMA")
	}
	if KernelName() != want {
		t.Fatalf("LATENTAD_CPU=%s but the kernels in use are %q", want, KernelName())
	}
}
