// Package cliargs lets a urfave/cli v2 command take its flags before or
// after its operands, as cosign, git and docker users type them:
//
//	pyrsia-build verify app.tar --key cosign.pub
//
// urfave/cli v2 (like Go's flag package) stops parsing flags at the first
// operand. [Reorder] rewrites the command line before it is parsed: it
// follows the command path (the commands and subcommands named), and at the
// command that runs moves every flag, with its value, in front of the
// operands. It knows from the command's flag definitions which flags take a
// value, so a value that looks like an operand ("--key cosign.pub") or a
// flag ("--cosign-threshold -1") stays with its flag. Everything after "--"
// is an operand; "--" is put back in front of the operands when one of them
// starts with '-'.
package cliargs

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the flag urfave/cli's shell completion appends last.
const completionFlag = "--generate-bash-completion"

// MissingValueError is a flag that takes a value given last, without one.
type MissingValueError struct {
	Flag    string   // as typed, e.g. "--key"
	Command []string // the command path, e.g. ["log", "append"]
}

func (e *MissingValueError) Error() string {
	return fmt.Sprintf("flag needs an argument: %s", e.Flag)
}

// Reorder returns args (without the program name) with the flags of the
// command that runs moved before its operands. Flags before a command's
// name belong to the command above, and stay where they are. A flag that is
// not defined is left for the parser to report, and taken to have no value.
func Reorder(app *cli.App, args []string) ([]string, error) {
	complete := len(args) > 0 && args[len(args)-1] == completionFlag
	if complete {
		args = args[:len(args)-1]
	}
	out, err := reorder(app.Flags, app.Commands, args, nil)
	if err != nil {
		return nil, err
	}
	if complete {
		out = append(out, completionFlag)
	}
	return out, nil
}

func reorder(flags []cli.Flag, cmds []*cli.Command, args, path []string) ([]string, error) {
	if len(cmds) > 0 {
		// A command with subcommands: find the subcommand's name, past
		// this command's own flags.
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				return args, nil
			}
			if isFlag(a) {
				if takesValue(flags, a) {
					i++
				}
				continue
			}
			for _, c := range cmds {
				if c.HasName(a) {
					rest, err := reorder(c.Flags, c.Subcommands, args[i+1:], append(path[:len(path):len(path)], c.Name))
					if err != nil {
						return nil, err
					}
					return append(args[:i+1:i+1], rest...), nil
				}
			}
			return args, nil // not a command: the parser says so
		}
		return args, nil
	}
	var out, operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case isFlag(a):
			out = append(out, a)
			if takesValue(flags, a) {
				if i+1 == len(args) {
					return nil, &MissingValueError{Flag: a, Command: path}
				}
				i++
				out = append(out, args[i])
			}
		default:
			operands = append(operands, a)
		}
	}
	for _, o := range operands {
		if strings.HasPrefix(o, "-") {
			out = append(out, "--")
			break
		}
	}
	return append(out, operands...), nil
}

// isFlag reports whether a is a flag: "-x", "--x", "-x=v", "--x=v". A lone
// "-" is an operand (standard input, by convention).
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// takesValue reports whether the flag a (as typed) takes its value from the
// next argument: it is defined, takes a value, and has no "=value".
func takesValue(flags []cli.Flag, a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				df, ok := f.(cli.DocGenerationFlag)
				return ok && df.TakesValue()
			}
		}
	}
	return false
}
