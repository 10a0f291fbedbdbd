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
//
// To keep training memory down the block keeps three activations for its backward: c1,
// c2 and r (the conv outputs and the sum before the last SiLU). Backward recomputes
// g1 = norm1(c1) and a from them (one fused GroupNormSiLU, which the forward ran without
// keeping g1), which gives the same values as the forward pass: every op is deterministic
// and the op's y does not depend on whether it writes pre. The block's input and output
// and a scratch tensor belong to the caller.
type resBlock struct {
	mlp          timeMLP
	conv1, conv2 *Conv3d
	norm1, norm2 *GroupNorm
	skipConv     *Conv3d    // nil for the identity skip
	skipNorm     *GroupNorm // nil for the identity skip

	c1, c2, r        *slot // conv1 output, conv2 output, norm2 output + skip
	sc, sg, dsc, dxs *slot // skip path
	dx               *slot // dL/dx for a skip block (an identity block returns it in c1)
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
		c1:    p.slot(), c2: p.slot(), r: p.slot(),
	}
	if in != out {
		r.skipConv = newConv3d(b, name+".skip.0", in, out, 1, compute.Conv{Stride: [3]int{1, 1, 1}})
		r.skipNorm = newGroupNorm(b, p, name+".skip.1", out)
		r.sc, r.sg, r.dsc, r.dxs, r.dx = p.slot(), p.slot(), p.slot(), p.slot(), p.slot()
	}
	return r
}

// outShape is the block's output shape for an input x.
func (r *resBlock) outShape(x *compute.Tensor) []int {
	return []int{x.Dim(0), r.conv1.W.Value.Dim(0), x.Dim(2), x.Dim(3), x.Dim(4)}
}

// forward runs the block on x (N, in, …) with the time embedding emb (N, time_dim) and
// writes its output (N, out, …) into out, which may be x itself (x is read before out is
// written). s is scratch of out's shape that must not alias x or out. emb must stay
// unchanged until backward.
func (r *resBlock) forward(dev compute.Device, x, emb, s, out *compute.Tensor) {
	n, c := x.Dim(0), r.conv1.W.Value.Dim(0)
	shape := r.outShape(x)

	m := &r.mlp
	h, hs, te := m.h.get(dev, n, c), m.hs.get(dev, n, c), m.out.get(dev, n, c)
	m.l0.Forward(dev, emb, h)
	dev.ActForward(compute.SiLU, h, hs)
	m.l2.Forward(dev, hs, te)

	c1 := r.c1.get(dev, shape...)
	r.conv1.Forward(dev, x, c1)
	r.norm1.ForwardSiLU(dev, c1, te, nil, s) // a = SiLU(g1) + te; backward recomputes g1

	c2, rr := r.c2.get(dev, shape...), r.r.get(dev, shape...)
	r.conv2.Forward(dev, s, c2)
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
}

// backward takes the forward's input x (the same values; the caller may have recomputed
// it) and dL/dout in dout (overwritten), overwrites the block's parameter gradients and
// returns dL/dx in a tensor of its own, valid until its next forward. s is scratch of
// dout's shape; emb is the forward's time embedding. x, dout and s must be distinct. The
// kept activations serve as scratch, so each forward allows one backward.
func (r *resBlock) backward(dev compute.Device, x, emb, dout, s *compute.Tensor) *compute.Tensor {
	n := dout.Dim(0)
	c := dout.Dim(1)
	c1, c2, rr := r.c1.t, r.c2.t, r.r.t
	dr := dout
	dev.ActBackward(compute.SiLU, rr, nil, dout, dr)

	s1 := rr                          // r is dead from here on
	r.norm2.Backward(dev, c2, dr, s1) // s1 = dL/dc2; c2 is dead from here on
	// Recompute g1 into c2's buffer (norm1's mean and rstd come out the same) and a into s.
	m := &r.mlp
	g1, a := c2, s
	r.norm1.ForwardSiLU(dev, c1, m.out.t, g1, a)
	r.conv2.Backward(dev, a, s1, s) // s = dL/da (a is read first)
	dte, dhs, dh := m.dout.get(dev, n, c), m.dhs.get(dev, n, c), m.dh.get(dev, n, c)
	dev.SumSpatial(s, dte)
	m.l2.Backward(dev, m.hs.t, dte, dhs)
	dev.ActBackward(compute.SiLU, m.h.t, nil, dhs, dh)
	m.l0.Backward(dev, emb, dh, nil)

	dev.ActBackward(compute.SiLU, g1, nil, s, s) // dL/dg1
	r.norm1.Backward(dev, c1, s, s1)             // s1 = dL/dc1

	if r.skipConv == nil {
		dx := c1 // dead now
		r.conv1.Backward(dev, x, s1, dx)
		dev.AXPY(1, dr, dx)
		return dx
	}
	dx := r.dx.get(dev, x.Shape()...)
	r.conv1.Backward(dev, x, s1, dx)
	dsc := r.dsc.get(dev, dr.Shape()...)
	dxs := r.dxs.get(dev, dx.Shape()...)
	r.skipNorm.Backward(dev, r.sc.t, dr, dsc)
	r.skipConv.Backward(dev, x, dsc, dxs)
	dev.AXPY(1, dxs, dx)
	return dx
}

// Velocity is the seed's LatentVelocityEstimator: v(z, t) for flow matching, and ε̂(z, t/T)
// for DDPM (SPEC §2).
//
// Training memory: besides the parameters and the output v, Forward keeps three
// (N, base, …) activations per residual block and five for the model (h0, n0, on, the
// running block input x, and a scratch that ends as SiLU(on)). Backward recomputes what it
// did not keep (each block's input and g1, a) and writes its gradients into activations it
// no longer needs.
type Velocity struct {
	dev    compute.Device
	cfg    VelocityConfig
	params *ParamSet

	inConv  *Conv3d
	inNorm  *GroupNorm
	blocks  []*resBlock
	outNorm *GroupNorm
	outConv *Conv3d
	bufs    pool
	z       *compute.Tensor // the last Forward's input (the caller's, unchanged until Backward)
	emb     *slot           // the time embedding, kept for backward
	h0, n0  *slot           // input_conv output, input_norm output
	x       *slot           // SiLU(n0), then each block's output in turn (in place)
	s       *slot           // scratch: the blocks' a, then SiLU(on); gradients in Backward
	on      *slot           // output_norm output
	v       *slot
	pending bool // a Forward whose activations Backward has not consumed
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
	m.emb, m.h0, m.n0, m.x, m.s = p.slot(), p.slot(), p.slot(), p.slot(), p.slot()
	m.on, m.v = p.slot(), p.slot()
	return m, nil
}

// Config returns the configuration the model was built with.
func (m *Velocity) Config() VelocityConfig { return m.cfg }

// Params returns the model's parameters.
func (m *Velocity) Params() *ParamSet { return m.params }

// Device returns the device the model lives on.
func (m *Velocity) Device() compute.Device { return m.dev }

// Forward computes v(z, t) for z (B, InChannels, D, H, W) (any D, H, W) and len(t) == B.
// The result is owned by the model and valid until the next Forward; the activations are
// kept for one Backward, which also reads z: z must stay unchanged until then (the model
// does not copy it). Buffers are reused across calls with the same shape. Shapes that
// CheckInput rejects panic: validate user data first.
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

	m.z = z
	emb := m.emb.get(dev, n, m.cfg.TimeDim)
	dev.Upload(emb, TimeEmbedding(t, m.cfg.TimeDim))

	h0, n0, x, s := m.h0.get(dev, base...), m.n0.get(dev, base...), m.x.get(dev, base...), m.s.get(dev, base...)
	m.inConv.Forward(dev, z, h0)
	m.inNorm.ForwardSiLU(dev, h0, nil, n0, x) // n0 kept: SiLU's backward and block 0's input
	for _, b := range m.blocks {
		b.forward(dev, x, emb, s, x)
	}
	on := m.on.get(dev, base...)
	m.outNorm.ForwardSiLU(dev, x, nil, on, s) // s = SiLU(on)
	v := m.v.get(dev, shape...)
	m.outConv.Forward(dev, s, v)
	m.pending = true
	return v
}

// Backward takes dL/dv (the shape of the last Forward's output) and overwrites every
// Param.Grad. It does not compute dL/dz (no caller needs it). dv is not modified. It
// consumes the Forward's activations: each Forward allows one Backward.
func (m *Velocity) Backward(dv *compute.Tensor) {
	if !m.pending {
		panic("nn.Velocity.Backward: no Forward to differentiate (each Forward allows one Backward)")
	}
	if !compute.SameShape(dv, m.v.t) {
		panic(fmt.Sprintf("nn.Velocity.Backward: gradient of shape %v for an output of shape %v", dv.Shape(), m.v.t.Shape()))
	}
	m.pending = false
	dev := m.dev
	x, s, on := m.x.t, m.s.t, m.on.t

	m.outConv.Backward(dev, s, dv, s)            // s held SiLU(on); now dL/d(SiLU(on))
	dev.ActBackward(compute.SiLU, on, nil, s, s) // dL/d(on)
	dout := on                                   // on is dead from here on
	m.outNorm.Backward(dev, x, s, dout)          // x holds the last block's output
	for i := len(m.blocks) - 1; i >= 0; i-- {
		// Recompute the block's input into x: SiLU of the previous block's r, or of n0.
		if i > 0 {
			dev.ActForward(compute.SiLU, m.blocks[i-1].r.t, x)
		} else {
			dev.ActForward(compute.SiLU, m.n0.t, x)
		}
		dout = m.blocks[i].backward(dev, x, m.emb.t, dout, s)
	}
	dev.ActBackward(compute.SiLU, m.n0.t, nil, dout, dout)
	m.inNorm.Backward(dev, m.h0.t, dout, s)
	m.inConv.Backward(dev, m.z, s, nil)
	m.z = nil
}

// Release frees the parameters and every buffer; the model must not be used afterwards.
func (m *Velocity) Release() {
	m.bufs.release(m.dev)
	m.params.release()
	m.z = nil
}
