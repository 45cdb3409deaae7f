package node

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

const fuzzInput = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// FuzzRequestProtocolLines: what a build node sends back on
// RequestProtocol is outside input to a regular node: line framing, the
// answer, the events. Nothing panics, a line is never longer than its
// bound, and only an answer or an event of this round is taken.
func FuzzRequestProtocolLines(f *testing.F) {
	for _, s := range []string{
		`{"inputDigest":"` + fuzzInput + `"}` + "\n",
		`{"error":"busy"}` + "\n",
		`{"type":"vote","input":"` + fuzzInput + `","node":"node-a","subjects":["sha256:22"]}` + "\n",
		`{"type":"verdict","input":"` + fuzzInput + `","verdict":{"text":"no quorum"}}` + "\n",
		`{"type":"final","input":"` + fuzzInput + `","index":0,"size":1}`,
		`{"type":"vote","input":"sha256:other"}` + "\n",
		"\n\n", "{", strings.Repeat("x", 300) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(b), 16)
		for {
			line, err := readLine(br, 256)
			if err != nil {
				break
			}
			if len(line) > 256 {
				t.Fatalf("readLine returned %d bytes, over its bound", len(line))
			}
			_, err = parseAnswer(line, fuzzInput)
			var refused *refusedError
			if err == nil && !bytes.Contains(line, []byte(fuzzInput)) {
				t.Fatalf("answer %q taken without the input digest", line)
			}
			if errors.As(err, &refused) && len(refused.msg) > 1024+3 {
				t.Fatalf("refusal text of %d bytes", len(refused.msg))
			}
			if ev, err := parseRelayed(line, fuzzInput); err == nil && (ev.Input != fuzzInput || ev.Type == "") {
				t.Fatalf("event %+v taken from %q", ev, line)
			}
		}
	})
}
