package cliargs

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func testApp() *cli.App {
	return &cli.App{
		Name: "pb",
		Commands: []*cli.Command{
			{
				Name: "verify",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "key"},
					&cli.IntFlag{Name: "cosign-threshold"},
					&cli.BoolFlag{Name: "json"},
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}},
				},
			},
			{
				Name:    "log",
				Aliases: []string{"l"},
				Subcommands: []*cli.Command{{
					Name:  "append",
					Flags: []cli.Flag{&cli.StringFlag{Name: "dir"}, &cli.BoolFlag{Name: "raw"}},
				}},
			},
		},
	}
}

func TestReorder(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"flags first already", "verify --key k.pub app.tar", "verify --key k.pub app.tar"},
		{"flag after operand", "verify app.tar --key k.pub", "verify --key k.pub app.tar"},
		{"mixed", "verify --json app.tar --key a --key=b -o out", "verify --json --key a --key=b -o out app.tar"},
		{"value that looks like a flag", "verify app.tar --cosign-threshold -1", "verify --cosign-threshold -1 app.tar"},
		{"value that looks like an operand", "verify --key app.tar other", "verify --key app.tar other"},
		{"bool does not take the next", "verify --json app.tar", "verify --json app.tar"},
		{"double dash", "verify --key k -- --json", "verify --key k -- --json"},
		{"double dash keeps flags after it", "verify app.tar -- --key k", "verify -- app.tar --key k"},
		{"double dash without dash operands", "verify -- app.tar", "verify app.tar"},
		{"lone dash is an operand", "verify - --key k", "verify --key k -- -"},
		{"subcommand", "log append e.json --dir d --raw", "log append --dir d --raw e.json"},
		{"subcommand alias", "l append e.json --dir d", "l append --dir d e.json"},
		{"unknown flag has no value", "verify app.tar --bogus x", "verify --bogus app.tar x"},
		{"unknown command left alone", "bogus a --key k", "bogus a --key k"},
		{"help after operand", "verify app.tar --help", "verify --help app.tar"},
		{"completion flag stays last", "verify app.tar --key k --generate-bash-completion", "verify --key k app.tar --generate-bash-completion"},
		{"no arguments", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Reorder(testApp(), strings.Fields(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
}

func TestReorderMissingValue(t *testing.T) {
	_, err := Reorder(testApp(), []string{"log", "append", "e.json", "--dir"})
	var me *MissingValueError
	if !errors.As(err, &me) {
		t.Fatalf("got %v, want a MissingValueError", err)
	}
	if me.Flag != "--dir" || !slices.Equal(me.Command, []string{"log", "append"}) {
		t.Errorf("got flag %q command %q, want --dir in log append", me.Flag, me.Command)
	}
}

// FuzzReorder checks that reordering only moves arguments (the same
// arguments come out, give or take a "--") and that a second pass changes
// nothing.
func FuzzReorder(f *testing.F) {
	f.Add("verify app.tar --key k.pub --json")
	f.Add("log append -- -x --dir d")
	f.Add("verify - --cosign-threshold -1 --")
	f.Fuzz(func(t *testing.T, line string) {
		in := strings.Fields(line)
		out, err := Reorder(testApp(), in)
		if err != nil {
			return
		}
		a, b := slices.Clone(in), slices.Clone(out)
		a = slices.DeleteFunc(a, func(s string) bool { return s == "--" })
		b = slices.DeleteFunc(b, func(s string) bool { return s == "--" })
		sort.Strings(a)
		sort.Strings(b)
		if !slices.Equal(a, b) {
			t.Fatalf("Reorder(%q) = %q: not the same arguments", in, out)
		}
		again, err := Reorder(testApp(), out)
		if err != nil || !slices.Equal(again, out) {
			t.Fatalf("Reorder(%q) = %q, but Reorder of that = %q, %v", in, out, again, err)
		}
	})
}
