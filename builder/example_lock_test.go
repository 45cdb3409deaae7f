package builder_test

import (
	"fmt"

	"github.com/pyrsia/pyrsia-build/builder"
)

// ExampleParseLock reads a dependency lock: each entry is a file in a
// Maven repository, pinned by sha256, with no repository host in it.
func ExampleParseLock() {
	l, err := builder.ParseLock([]byte(`{
  "version": 1,
  "files": [
    {"coordinate":"junit:junit:4.13.2","file":"junit-4.13.2.jar","sha256":"8e495b634469d64fb8acfa3495a065cbacc8a0fff55ce1e31007be4c16dc57d3"},
    {"coordinate":"junit:junit:4.13.2","file":"junit-4.13.2.pom","sha256":"569b6977ee4603c965c1c46c3058fa6e969291b0160eb6964dd092cd89eadd94"}
  ]
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range l.Files {
		fmt.Println(f.Path())
	}
	// Output:
	// junit/junit/4.13.2/junit-4.13.2.jar
	// junit/junit/4.13.2/junit-4.13.2.pom
}
