package nn

import (
	"errors"
	"fmt"
	"slices"

	"github.com/latentad/latentad/compute"
)

// VelocityConfig is LatentVelocityEstimator's configuration (the seed's constructor
// arguments and command-line flags).
type VelocityConfig struct {
	InChannels   int `json:"in_channels"`
	BaseChannels int `json:"base_channels"`
	TimeDim      int `json:"time_dim"`
	NumResBlocks int `json:"num_res_blocks"`
}

// Map returns the config under the seed's argument names, as checkpoints record it.
func (c VelocityConfig) Map() map[string]int {
	return map[string]int{"in_channels": c.InChannels, "base_channels": c.BaseChannels, "time_dim": c.TimeDim, "num_res_blocks": c.NumResBlocks}
}

// VelocityConfigFromMap reads a config recorded by Map (missing names read as 0, which
// Validate rejects).
func VelocityConfigFromMap(m map[string]int) VelocityConfig {
	return VelocityConfig{InChannels: m["in_channels"], BaseChannels: m["base_channels"], TimeDim: m["time_dim"], NumResBlocks: m["num_res_blocks"]}
}

// DefaultVelocityConfig is the seed's default: 128, 64, 128, 4 (1,378,752 parameters).
func DefaultVelocityConfig() VelocityConfig {
	return VelocityConfig{InChannels: 128, BaseChannels: 64, TimeDim: 128, NumResBlocks: 4}
}

// Validate reports a configuration the model cannot be built with, naming the flag.
func (c VelocityConfig) Validate() error {
	var errs []error
	if c.InChannels < 1 {
		errs = append(errs, fmt.Errorf("in_channels must be at least 1, got %d", c.InChannels))
	}
	if c.BaseChannels < normGroups || c.BaseChannels%normGroups != 0 {
		errs = append(errs, fmt.Errorf("base_channels must be a positive multiple of %d (GroupNorm uses %d groups), got %d",
			normGroups, normGroups, c.BaseChannels))
	}
	if c.TimeDim < 4 || c.TimeDim%2 != 0 {
		errs = append(errs, fmt.Errorf("time_dim must be even and at least 4 (the embedding divides by time_dim/2-1), got %d", c.TimeDim))
	}
	if c.NumResBlocks < 0 {
		errs = append(errs, fmt.Errorf("num_res_blocks must not be negative, got %d", c.NumResBlocks))
	}
	return errors.Join(errs...)
}

// CheckInput reports whether a latent batch of the given shape can go through the model:
// (B, InChannels, D, H, W) with every dimension at least 1.
func (c VelocityConfig) CheckInput(shape []int) error {
	if len(shape) != 5 || shape[1] != c.InChannels || slices.Min(shape) < 1 {
		return fmt.Errorf("latents of shape %v do not fit the velocity model: want (batch, %d, D, H, W) with every dimension ≥ 1",
			shape, c.InChannels)
	}
	return nil
}

// ParamCount is the number of scalars of a model with this configuration.
func (c VelocityConfig) ParamCount() int {
	conv := func(in, out int) int { return out*in*27 + out }
	b, t := c.BaseChannels, c.TimeDim
	block := (t*b + b) + (b*b + b) + 2*conv(b, b) + 4*b
	return conv(c.InChannels, b) + 2*b + c.NumResBlocks*block + 2*b + conv(b, c.InChannels)
}

// timeMLP is the block's time projection: Linear(time_dim→C), SiLU, Linear(C→C)
// (PyTorch keys time_mlp.mlp.0.*, time_mlp.mlp.2.*).
type timeMLP struct {
	l0, l2        *Linear
	h, hs, out    *slot // mlp.0 output, after SiLU, mlp.2 output (N, C)
	dh, dhs, dout *slot
}

// resBlock is the seed's residual block: out = SiLU(norm2(conv2(a)) + skip(x)) with
// a = SiLU(norm1(conv1(x))) + te. The skip is the identity when in == out channels and
// Conv3d 1×1 + GroupNorm otherwise (keys skip.0.*, skip.1.*); the velocity model only
// builds in == out blocks, as the seed does.
type resBlock struct {
	mlp          timeMLP
	conv1, conv2 *Conv3d
	norm1, norm2 *GroupNorm
	skipConv     *Conv3d    // nil for the identity skip
	skipNorm     *GroupNorm // nil for the identity skip

	x                     *compute.Tensor // the last forward's input (owned by the caller)
	c1, g1, a, c2, r, out *slot
	sc, sg, dsc, dxs      *slot // skip path
}

func newResBlock(b *builder, p *pool, name string, in, out, timeDim int) *resBlock {
	r := &resBlock{
		mlp: timeMLP{
			l0: newLinear(b, name+".time_mlp.mlp.0", timeDim, out),
			l2: newLinear(b, name+".time_mlp.mlp.2", out, out),
			h:  p.slot(), hs: p.slot(), out: p.slot(), dh: p.slot(), dhs: p.slot(), dout: p.slot(),
		},
		conv1: newConv3d(b, name+".conv1", in, out, 3, compute.Conv3x3),
		norm1: newGroupNorm(b, p, name+".norm1", out),
		conv2: newConv3d(b, name+".conv2", out, out, 3, compute.Conv3x3),
		norm2: newGroupNorm(b, p, name+".norm2", out),
		c1:    p.slot(), g1: p.slot(), a: p.slot(), c2: p.slot(), r: p.slot(), out: p.slot(),
	}
	if in != out {
		r.skipConv = newConv3d(b, name+".skip.0", in, out, 1, compute.Conv{Stride: [3]int{1, 1, 1}})
		r.skipNorm = newGroupNorm(b, p, name+".skip.1", out)
		r.sc, r.sg, r.dsc, r.dxs = p.slot(), p.slot(), p.slot(), p.slot()
	}
	return r
}

// forward runs the block on x (N, in, …) with the time embedding emb (N, time_dim) and
// returns its output (N, out, …), owned by the block. x and emb must stay unchanged until
// backward.
func (r *resBlock) forward(dev compute.Device, x, emb *compute.Tensor) *compute.Tensor {
	n := x.Dim(0)
	c := r.conv1.W.Value.Dim(0)
	shape := []int{n, c, x.Dim(2), x.Dim(3), x.Dim(4)}
	r.x = x

	m := &r.mlp
	h, hs, te := m.h.get(dev, n, c), m.hs.get(dev, n, c), m.out.get(dev, n, c)
	m.l0.Forward(dev, emb, h)
	dev.ActForward(compute.SiLU, h, hs)
	m.l2.Forward(dev, hs, te)

	c1, g1, a := r.c1.get(dev, shape...), r.g1.get(dev, shape...), r.a.get(dev, shape...)
	r.conv1.Forward(dev, x, c1)
	r.norm1.Forward(dev, c1, g1)
	dev.ActForward(compute.SiLU, g1, a)
	dev.AddSampleBias(a, te) // SiLU's backward reads g1, so a may be updated in place

	c2, rr, out := r.c2.get(dev, shape...), r.r.get(dev, shape...), r.out.get(dev, shape...)
	r.conv2.Forward(dev, a, c2)
	r.norm2.Forward(dev, c2, rr) // GroupNorm's backward reads c2, so rr may take the sum
	if r.skipConv == nil {
		dev.AXPY(1, x, rr)
	} else {
		sc, sg := r.sc.get(dev, shape...), r.sg.get(dev, shape...)
		r.skipConv.Forward(dev, x, sc)
		r.skipNorm.Forward(dev, sc, sg)
		dev.AXPY(1, sg, rr)
	}
	dev.ActForward(compute.SiLU, rr, out)
	return out
}

// backward takes dL/dout in dout (overwritten), overwrites the block's parameter gradients
// and writes dL/dx into dx. s1 and s2 are scratch tensors of dout's shape; emb is the
// forward's time embedding. None of dout, dx, s1, s2 may alias another.
func (r *resBlock) backward(dev compute.Device, emb, dout, dx, s1, s2 *compute.Tensor) {
	n := dout.Dim(0)
	c := dout.Dim(1)
	dr := dout
	dev.ActBackward(compute.SiLU, r.r.t, r.out.t, dout, dr)

	r.norm2.Backward(dev, r.c2.t, dr, s1) // s1 = dL/dc2
	r.conv2.Backward(dev, r.a.t, s1, s2)  // s2 = dL/da
	m := &r.mlp
	dte, dhs, dh := m.dout.get(dev, n, c), m.dhs.get(dev, n, c), m.dh.get(dev, n, c)
	dev.SumSpatial(s2, dte)
	m.l2.Backward(dev, m.hs.t, dte, dhs)
	dev.ActBackward(compute.SiLU, m.h.t, m.hs.t, dhs, dh)
	m.l0.Backward(dev, emb, dh, nil)

	dev.ActBackward(compute.SiLU, r.g1.t, r.a.t, s2, s2) // dL/dg1 (SiLU reads g1, not a)
	r.norm1.Backward(dev, r.c1.t, s2, s1)                // s1 = dL/dc1
	r.conv1.Backward(dev, r.x, s1, dx)

	if r.skipConv == nil {
		dev.AXPY(1, dr, dx)
		return
	}
	dsc := r.dsc.get(dev, dr.Shape()...)
	dxs := r.dxs.get(dev, dx.Shape()...)
	r.skipNorm.Backward(dev, r.sc.t, dr, dsc)
	r.skipConv.Backward(dev, r.x, dsc, dxs)
	dev.AXPY(1, dxs, dx)
}

// Velocity is the seed's LatentVelocityEstimator: v(z, t) for flow matching, and ε̂(z, t/T)
// for DDPM (SPEC §2).
type Velocity struct {
	dev    compute.Device
	cfg    VelocityConfig
	params *ParamSet

	inConv   *Conv3d
	inNorm   *GroupNorm
	blocks   []*resBlock
	outNorm  *GroupNorm
	outConv  *Conv3d
	bufs     pool
	z, emb   *slot // copies of the inputs, kept for backward
	h0, n0   *slot // input_conv output, input_norm output
	h        *slot // SiLU(n0): the first block's input
	on, os   *slot // output_norm output, after SiLU
	v        *slot
	grads    [4]*slot // (N, base, …) gradient buffers rotated through the blocks
	dos      *slot    // (N, base, …) gradient of SiLU(output_norm)
	forwards int
}

// NewVelocity builds the model with PyTorch's default initialisation drawn from a
// generator seeded with seed.
func NewVelocity(dev compute.Device, cfg VelocityConfig, seed uint64) (*Velocity, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("velocity model: %w", err)
	}
	m := &Velocity{dev: dev, cfg: cfg}
	var b builder
	p := &m.bufs
	base := cfg.BaseChannels
	m.inConv = newConv3d(&b, "input_conv", cfg.InChannels, base, 3, compute.Conv3x3)
	m.inNorm = newGroupNorm(&b, p, "input_norm", base)
	for i := range cfg.NumResBlocks {
		m.blocks = append(m.blocks, newResBlock(&b, p, fmt.Sprintf("res_blocks.%d", i), base, base, cfg.TimeDim))
	}
	m.outNorm = newGroupNorm(&b, p, "output_norm", base)
	m.outConv = newConv3d(&b, "output_conv", base, cfg.InChannels, 3, compute.Conv3x3)
	m.params = b.build(dev, seed)
	m.z, m.emb, m.h0, m.n0, m.h = p.slot(), p.slot(), p.slot(), p.slot(), p.slot()
	m.on, m.os, m.v, m.dos = p.slot(), p.slot(), p.slot(), p.slot()
	for i := range m.grads {
		m.grads[i] = p.slot()
	}
	return m, nil
}

// Config returns the configuration the model was built with.
func (m *Velocity) Config() VelocityConfig { return m.cfg }

// Params returns the model's parameters.
func (m *Velocity) Params() *ParamSet { return m.params }

// Device returns the device the model lives on.
func (m *Velocity) Device() compute.Device { return m.dev }

// Forward computes v(z, t) for z (B, InChannels, D, H, W) (any D, H, W) and len(t) == B.
// The result is owned by the model, valid until the next Forward, and the activations are
// kept for Backward (z is copied, so the caller may reuse it). Buffers are reused across
// calls with the same shape. Shapes that CheckInput rejects panic: validate user data first.
func (m *Velocity) Forward(z *compute.Tensor, t []float32) *compute.Tensor {
	if err := m.cfg.CheckInput(z.Shape()); err != nil {
		panic("nn.Velocity.Forward: " + err.Error())
	}
	n := z.Dim(0)
	if len(t) != n {
		panic(fmt.Sprintf("nn.Velocity.Forward: %d time values for a batch of %d", len(t), n))
	}
	dev := m.dev
	shape := z.Shape()
	base := []int{n, m.cfg.BaseChannels, shape[2], shape[3], shape[4]}

	zc := m.z.get(dev, shape...)
	dev.Copy(zc, z)
	emb := m.emb.get(dev, n, m.cfg.TimeDim)
	dev.Upload(emb, TimeEmbedding(t, m.cfg.TimeDim))

	h0, n0, h := m.h0.get(dev, base...), m.n0.get(dev, base...), m.h.get(dev, base...)
	m.inConv.Forward(dev, zc, h0)
	m.inNorm.Forward(dev, h0, n0)
	dev.ActForward(compute.SiLU, n0, h)
	x := h
	for _, b := range m.blocks {
		x = b.forward(dev, x, emb)
	}
	on, os := m.on.get(dev, base...), m.os.get(dev, base...)
	m.outNorm.Forward(dev, x, on)
	dev.ActForward(compute.SiLU, on, os)
	v := m.v.get(dev, shape...)
	m.outConv.Forward(dev, os, v)
	m.forwards++
	return v
}

// Backward takes dL/dv (the shape of the last Forward's output) and overwrites every
// Param.Grad. It does not compute dL/dz (no caller needs it). dv is not modified.
func (m *Velocity) Backward(dv *compute.Tensor) {
	if m.forwards == 0 {
		panic("nn.Velocity.Backward: no Forward to differentiate")
	}
	if !compute.SameShape(dv, m.v.t) {
		panic(fmt.Sprintf("nn.Velocity.Backward: gradient of shape %v for an output of shape %v", dv.Shape(), m.v.t.Shape()))
	}
	dev := m.dev
	base := m.h.t.Shape()
	var g [4]*compute.Tensor
	for i, s := range m.grads {
		g[i] = s.get(dev, base...)
	}
	dos := m.dos.get(dev, base...)

	m.outConv.Backward(dev, m.os.t, dv, dos)
	dev.ActBackward(compute.SiLU, m.on.t, m.os.t, dos, dos)
	last := m.h.t
	if k := len(m.blocks); k > 0 {
		last = m.blocks[k-1].out.t
	}
	dout, dx, s1, s2 := g[0], g[1], g[2], g[3]
	m.outNorm.Backward(dev, last, dos, dout)
	for i := len(m.blocks) - 1; i >= 0; i-- {
		m.blocks[i].backward(dev, m.emb.t, dout, dx, s1, s2)
		dout, dx = dx, dout
	}
	dev.ActBackward(compute.SiLU, m.n0.t, m.h.t, dout, dout)
	m.inNorm.Backward(dev, m.h0.t, dout, dx)
	m.inConv.Backward(dev, m.z.t, dx, nil)
}

// Release frees the parameters and every buffer; the model must not be used afterwards.
func (m *Velocity) Release() {
	m.bufs.release(m.dev)
	m.params.release()
}
