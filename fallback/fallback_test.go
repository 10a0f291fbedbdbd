package fallback

import (
	"testing"

	"github.com/latentad/latentad/compute/devicetest"
)

func TestConformance(t *testing.T) { devicetest.Run(t, New()) }

// BenchmarkOps measures every op at the velocity model's shapes:
//
//	go test -run - -bench Ops ./fallback
func BenchmarkOps(b *testing.B) { devicetest.Bench(b, New()) }
