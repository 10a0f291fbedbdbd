package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/latentad/latentad/fallback"
)

// Benchmarks at the seed's sizes: the default velocity model on a batch of 4 latents
// (4, 128, 8, 16, 16) and the base-16 autoencoder on one (1, 1, 64, 128, 128) volume.

func benchVelocity(b *testing.B, train bool) {
	dev := fallback.New()
	m, err := NewVelocity(dev, DefaultVelocityConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	rng := rand.New(rand.NewPCG(1, 2))
	z, target := upload(dev, randArray(rng, 4, 128, 8, 16, 16)), upload(dev, randArray(rng, 4, 128, 8, 16, 16))
	ts := []float32{0.1, 0.4, 0.6, 0.9}
	opt := NewAdam(dev, m.Params(), 1e-4)
	dv := dev.Alloc(z.Shape()...)
	b.ResetTimer()
	for range b.N {
		v := m.Forward(z, ts)
		if train {
			MSEGrad(dev, v, target, dv)
			m.Backward(dv)
			opt.Step()
		}
		if err := dev.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVelocityForward(b *testing.B)   { benchVelocity(b, false) }
func BenchmarkVelocityTrainStep(b *testing.B) { benchVelocity(b, true) }

func BenchmarkAEEncode(b *testing.B) {
	dev := fallback.New()
	m, err := NewTiny3DAE(dev, 16, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	x := upload(dev, randArray(rand.New(rand.NewPCG(1, 3)), 1, 1, 64, 128, 128))
	b.ResetTimer()
	for range b.N {
		m.Encode(x)
		if err := dev.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
