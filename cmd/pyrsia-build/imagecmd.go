package main

import (
	"fmt"
	"strings"

	"github.com/pyrsia/pyrsia-build/builder/image"
	"github.com/urfave/cli/v2"
)

func imageCommand() *cli.Command {
	cmd := &cli.Command{
		Name:  "image",
		Usage: "make and check builder images",
		Subcommands: []*cli.Command{{
			Name:      "make",
			Usage:     "make builder images reproducibly from Debian packages",
			UsageText: "pyrsia-build image make [--store DIR] NAME...",
			Description: `Makes each named builder image as an OCI layout in the image store
(DIR/NAME/), reproducibly: two makes with the same Debian packages give the
same digest, which build specs pin. Prints "NAME DIGEST" per image.

  busybox  Debian's busybox-static, for small and fast builds (seconds)
  maven    a debootstrap of Debian bookworm with OpenJDK 17, Maven, Debian's
           offline Maven repository (/usr/share/maven-repo, mvn -o) and gcc
           (one to three minutes; root and debootstrap needed)

The Debian mirror is read from this machine's apt sources.

Examples:
   pyrsia-build image make busybox
   pyrsia-build image make --store /var/lib/pyrsia/images busybox maven`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "store", Value: "images", Usage: "image store `DIR`"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return inputErr(fmt.Errorf("name at least one image: %s", strings.Join(image.Names, ", ")), "run 'pyrsia-build image make --help' for usage")
				}
				for _, name := range c.Args().Slice() {
					m, err := image.Make(c.Context, c.String("store"), name, c.App.ErrWriter)
					if err != nil {
						return inputErr(err)
					}
					fmt.Fprintf(c.App.ErrWriter, "%s\n", m)
					fmt.Fprintf(c.App.Writer, "%s %s\n", m.Name, m.Digest)
				}
				return nil
			},
		}},
	}
	for _, s := range cmd.Subcommands {
		s.OnUsageError = usageError
		s.HideHelpCommand = true
	}
	return cmd
}
