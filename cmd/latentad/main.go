// Command latentad finds anomalies in 3-D medical volumes by modelling the latent space of
// normal scans with flow matching and DDPM. Everything it does lives in package cli.
package main

import (
	"os"

	"github.com/latentad/latentad/cli"
)

func main() { os.Exit(cli.Main(os.Args)) }
