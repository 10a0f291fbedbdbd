package cli

import (
	"encoding/json"
	"fmt"
	"runtime"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/fallback/kern"
	"github.com/latentad/latentad/nn"
)

func init() {
	register(&ucli.Command{
		Name:      "info",
		Usage:     "show the backends this machine has and the model's size",
		UsageText: "latentad info [--json] [--in_channels 128 --base_channels 64 --time_dim 128 --num_res_blocks 4]",
		Flags: append([]ucli.Flag{
			intFlag("in_channels", 128, "latent channels"),
			boolFlag("json", "print one JSON object"),
		}, modelFlags()...),
		Action: runInfo,
	})
}

type backendInfo struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Device    string `json:"device,omitempty"`
	Note      string `json:"note,omitempty"`
}

type layerInfo struct {
	Name   string `json:"name"`
	Shape  []int  `json:"shape"`
	Params int    `json:"params"`
}

type infoOut struct {
	Version    string         `json:"version"`
	Platform   string         `json:"platform"`
	CPUs       int            `json:"cpus"`
	Backends   []backendInfo  `json:"backends"`
	Config     map[string]int `json:"config"`
	Parameters int            `json:"parameters"`
	Tensors    []layerInfo    `json:"tensors"`
}

func runInfo(c *ucli.Context) error {
	cfg := nn.VelocityConfig{
		InChannels: c.Int("in_channels"), BaseChannels: c.Int("base_channels"),
		TimeDim: c.Int("time_dim"), NumResBlocks: c.Int("num_res_blocks"),
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	cpu := fallback.New()
	out := infoOut{
		Version:  Version,
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:     runtime.GOMAXPROCS(0),
		Backends: []backendInfo{{Name: "cpu", Available: true, Device: cpu.Name() + " (" + kern.KernelName() + " kernels; LATENTAD_CPU=avx2 or go lowers the set)"}},
		Config:   cfg.Map(),
	}
	if d, err := openMetal(); err == nil {
		out.Backends = append(out.Backends, backendInfo{Name: "metal", Available: true, Device: d.Name()})
	} else {
		out.Backends = append(out.Backends, backendInfo{Name: "metal", Note: err.Error()})
	}
	m, err := nn.NewVelocity(cpu, cfg, 0)
	if err != nil {
		return err
	}
	defer m.Release()
	ps := m.Params()
	out.Parameters = ps.Count()
	for _, p := range ps.List {
		out.Tensors = append(out.Tensors, layerInfo{p.Name, p.Value.Shape(), p.Value.Len()})
	}
	if c.Bool("json") {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintf(stdout, "latentad %s on %s, %d CPUs\n\nbackends:\n", out.Version, out.Platform, out.CPUs)
	for _, b := range out.Backends {
		if b.Available {
			fmt.Fprintf(stdout, "  %-6s yes  %s\n", b.Name, b.Device)
		} else {
			fmt.Fprintf(stdout, "  %-6s no   %s\n", b.Name, b.Note)
		}
	}
	fmt.Fprintf(stdout, "\nLatentVelocityEstimator(in_channels=%d, base_channels=%d, time_dim=%d, num_res_blocks=%d)\n",
		cfg.InChannels, cfg.BaseChannels, cfg.TimeDim, cfg.NumResBlocks)
	for _, t := range out.Tensors {
		fmt.Fprintf(stdout, "  %-36s %-18s %9d\n", t.Name, fmt.Sprint(t.Shape), t.Params)
	}
	fmt.Fprintf(stdout, "parameters: %d (%.2f M)\n", out.Parameters, float64(out.Parameters)/1e6)
	return nil
}
