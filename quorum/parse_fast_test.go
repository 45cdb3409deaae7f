package quorum

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestParseVotePrefixShortcut: a vote that starts as ours do skips the
// version probe; a second "v" or "type" further on, which encoding/json
// takes, or an unknown field, is refused all the same.
func TestParseVotePrefixShortcut(t *testing.T) {
	nodes := testNodes(t, 1)
	spec, input := testSpec(t, "demo:1")
	good, err := testVote(t, testPolicyDigest, nodes[0], spec, input, "artifact").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(good, votePrefix) {
		t.Fatalf("a vote does not start with %s: %.80s", votePrefix, good)
	}
	if _, err := ParseVote(good); err != nil {
		t.Fatal(err)
	}
	end := len(good) - 1
	with := func(s string) []byte { return append(append([]byte{}, good[:end]...), s...) }
	tests := []struct {
		name, want string
		input      []byte
	}{
		{"second version", `"v" 1 and "type" "vote", want 2`, with(`,"v":1}`)},
		{"second type", `"type" "build-request"`, with(`,"type":"build-request"}`)},
		{"unknown field", `unknown field "extra"`, with(`,"extra":1}`)},
		{"garbage after the prefix", "malformed JSON", append(append([]byte{}, votePrefix...), "garbage"...)},
		{"trailing data", "trailing data", append(append([]byte{}, good...), "{}"...)},
		{"not utf8", "not valid UTF-8", bytes.Replace(good, []byte(`"node":"node-a"`), []byte("\"node\":\"node-\xff\""), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.HasPrefix(tt.input, votePrefix) {
				t.Fatal("the input does not take the shortcut")
			}
			_, err := ParseVote(tt.input)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Without the prefix, the version is still told apart.
	if _, err := ParseVote(bytes.Replace(good, []byte(`"v":2`), []byte(`"v":3`), 1)); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("a vote of version 3: got %v, want ErrUnsupportedVersion", err)
	}
}
