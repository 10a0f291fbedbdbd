// Package cli is latentad's command line: one file per command, each registering itself,
// all sharing the flag conventions of the seed's PyTorch scripts (snake_case names with
// kebab-case aliases, the same defaults).
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// Version is set at build time with -ldflags "-X github.com/latentad/latentad/cli.Version=…".
var Version = "dev"

var commands []*ucli.Command

// register adds a command; each command's file calls it from init.
func register(c *ucli.Command) { commands = append(commands, c) }

// stdout and stderr are variables so tests can capture them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	app := &ucli.App{
		Name:    "latentad",
		Usage:   "find anomalies in 3-D medical volumes by modelling the latent space of normal scans",
		Version: Version,
		Description: "latentad encodes CT volumes with a small 3-D autoencoder, models the latents of normal\n" +
			"scans with flow matching or DDPM, and scores how far a new scan lies from them.\n" +
			"Start with `latentad demo`: it generates a cohort and runs the whole pipeline.",
		Commands:       commands,
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*ucli.Context, error) {},
	}
	err := app.Run(interspersed(args))
	if err == nil {
		return 0
	}
	var ee ucli.ExitCoder
	if errors.As(err, &ee) && ee.ExitCode() == 0 {
		return 0
	}
	fmt.Fprintf(stderr, "latentad: %v\n", err)
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return 1
}

// names returns a snake_case flag name and its kebab-case alias (none when equal).
func names(snake string) (string, []string) {
	kebab := strings.ReplaceAll(snake, "_", "-")
	if kebab == snake {
		return snake, nil
	}
	return snake, []string{kebab}
}

func intFlag(name string, value int, usage string) *ucli.IntFlag {
	n, a := names(name)
	return &ucli.IntFlag{Name: n, Aliases: a, Value: value, Usage: usage}
}

func floatFlag(name string, value float64, usage string) *ucli.Float64Flag {
	n, a := names(name)
	return &ucli.Float64Flag{Name: n, Aliases: a, Value: value, Usage: usage}
}

func stringFlag(name, value, usage string) *ucli.StringFlag {
	n, a := names(name)
	return &ucli.StringFlag{Name: n, Aliases: a, Value: value, Usage: usage}
}

func boolFlag(name, usage string) *ucli.BoolFlag {
	n, a := names(name)
	return &ucli.BoolFlag{Name: n, Aliases: a, Usage: usage}
}

// usageError marks a mistake in the command line (exit code 2).
func usageError(format string, a ...any) error {
	return ucli.Exit(fmt.Sprintf(format, a...), 2)
}

// interspersed moves a command's flags that follow its positional arguments in front of
// them, so that `latentad merge-scores a.csv b.csv --out all.csv` works as written
// (urfave/cli stops reading flags at the first positional argument).
func interspersed(args []string) []string {
	if len(args) < 3 {
		return args
	}
	var cmd *ucli.Command
	for _, c := range commands {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	isBool := map[string]bool{}
	isList := map[string]bool{}
	known := map[string]bool{"help": true, "h": true}
	isBool["help"], isBool["h"] = true, true
	for _, f := range cmd.Flags {
		_, b := f.(*ucli.BoolFlag)
		_, li := f.(*ucli.IntSliceFlag)
		_, lf := f.(*ucli.Float64SliceFlag)
		for _, n := range f.Names() {
			known[n], isBool[n], isList[n] = true, b, li || lf
		}
	}
	var flags, pos []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		name := strings.TrimLeft(a, "-")
		if !strings.HasPrefix(a, "-") || a == "-" || !known[strings.SplitN(name, "=", 2)[0]] {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		if !strings.Contains(name, "=") && !isBool[name] && i+1 < len(rest) {
			i++
			v := rest[i]
			// The seed's list options take several values: --expected_shape 128 128 64.
			for isList[name] && i+1 < len(rest) && isNumber(rest[i+1]) {
				i++
				v += "," + rest[i]
			}
			flags = append(flags, v)
		}
	}
	return append(append(append([]string{}, args[:2]...), flags...), pos...)
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
