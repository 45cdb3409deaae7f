package quorum

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

var update = flag.Bool("update", false, "rewrite testdata/ seed files")

func validRequest(t testing.TB) *BuildRequest {
	t.Helper()
	spec, _ := testSpec(t, "demo:1")
	r, err := NewBuildRequest(RequestOptions{Policy: testPolicyDigest, Spec: spec, Signer: testSigner(t, 10), IncludeKey: true, Now: time.UnixMilli(1700000000000)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildRequestRoundTrip(t *testing.T) {
	r := validRequest(t)
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBuildRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	key := publicKey(t, testSigner(t, 10), "requester")
	if err := got.VerifySignature(key); err != nil {
		t.Fatal(err)
	}
	b2, _ := got.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
	}
	// Any signed field changed: the signature no longer verifies.
	changed := *got
	changed.Time = changed.Time.Add(time.Millisecond)
	if err := changed.VerifySignature(key); err == nil {
		t.Fatal("a request with another time verified")
	}
	if err := got.VerifySignature(publicKey(t, testSigner(t, 11), "other")); err == nil {
		t.Fatal("a request verified against another key")
	}
}

// mutate decodes b as a JSON object, applies f, and encodes it again.
func mutate(t *testing.T, b []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseBuildRequestErrors(t *testing.T) {
	good, _ := validRequest(t).Marshal()
	otherKey, _ := cryptoutils.MarshalPublicKeyToPEM(testSigner(t, 11).Public())
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty message"},
		{"not json", []byte("nope"), "not a JSON object"},
		{"no version", mutate(t, good, func(m map[string]any) { delete(m, "v") }), `missing version field "v"`},
		{"version 2", mutate(t, good, func(m map[string]any) { m["v"] = 2 }), "unsupported message version 2"},
		{"vote as request", mutate(t, good, func(m map[string]any) { m["type"] = "vote" }), `message type "vote", want "build-request"`},
		{"unknown field", mutate(t, good, func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`},
		{"bad policy", mutate(t, good, func(m map[string]any) { m["policy"] = "sha256:XY" }), "policy:"},
		{"spec not canonical", mutate(t, good, func(m map[string]any) {}), ""},
		{"spec changed", mutate(t, good, func(m map[string]any) { m["spec"].(map[string]any)["coordinate"] = "demo:2" }), "is not the spec's sha256"},
		{"spec not object", mutate(t, good, func(m map[string]any) { m["spec"] = "x" }), "not a JSON object"},
		{"short nonce", mutate(t, good, func(m map[string]any) { m["nonce"] = "abc" }), "nonce"},
		{"zero time", mutate(t, good, func(m map[string]any) { m["time"] = 0 }), "time 0"},
		{"bad requester", mutate(t, good, func(m map[string]any) { m["requester"] = "me" }), "is not a key id"},
		{"no sig", mutate(t, good, func(m map[string]any) { delete(m, "sig") }), "no signature"},
		{"key mismatch", mutate(t, good, func(m map[string]any) { m["requesterKey"] = string(otherKey) }), "requesterKey has key id"},
		{"bad key", mutate(t, good, func(m map[string]any) { m["requesterKey"] = "junk" }), "requesterKey"},
		{"trailing", append(append([]byte{}, good...), []byte(" {}")...), "trailing data"},
		{"oversized", append(good, bytes.Repeat([]byte(" "), MaxRequestSize)...), "over the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBuildRequest(tc.in)
			if tc.want == "" {
				// json.Marshal sorts keys: still canonical, still valid.
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "quorum: build request: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if tc.name == "version 2" && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("got %v, want ErrUnsupportedVersion", err)
			}
		})
	}
}

func TestVoteRoundTripAndErrors(t *testing.T) {
	nodes := testNodes(t, 2)
	spec, input := testSpec(t, "demo:1")
	v := testVote(t, testPolicyDigest, nodes[0], spec, input, "artifact")
	good, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseVote(good)
	if err != nil {
		t.Fatal(err)
	}
	m0 := Member{Name: "node-a", PeerID: nodes[0].id, Key: publicKey(t, nodes[0].signer, "node-a")}
	m1 := Member{Name: "node-a", PeerID: nodes[1].id, Key: publicKey(t, nodes[1].signer, "node-a")}
	if err := got.VerifySignature(m0); err != nil {
		t.Fatal(err)
	}
	if err := got.VerifySignature(m1); err == nil {
		t.Fatal("a vote verified against another node's key")
	}
	if len(got.Subjects) != 1 || got.Subjects[0].Digest != "sha256:"+hexDigest("artifact") {
		t.Fatalf("got subjects %v", got.Subjects)
	}
	failed, err := NewFailedVote(testVoteFor(testPolicyDigest, input, "node-b"), "compile error")
	if err != nil || !failed.Failed() {
		t.Fatalf("failed vote: %v %v", failed, err)
	}
	_, otherInput := testSpec(t, "demo:2")
	otherSpec, _ := testSpec(t, "demo:2")
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"request as vote", mutate(t, good, func(m map[string]any) { m["type"] = "build-request" }), "message type"},
		{"version 1 vote", mutate(t, good, func(m map[string]any) { m["v"] = 1 }), "unsupported message version 1"},
		{"no request", mutate(t, good, func(m map[string]any) { delete(m, "request") }), "quorum: vote: request:"},
		{"no time", mutate(t, good, func(m map[string]any) { delete(m, "time") }), "is not a positive unix time"},
		{"bad node", mutate(t, good, func(m map[string]any) { m["node"] = "Node A" }), "is not a node name"},
		{"neither", mutate(t, good, func(m map[string]any) { delete(m, "bundle"); delete(m, "manifest") }), "neither a bundle nor an error"},
		{"both", mutate(t, good, func(m map[string]any) { m["error"] = "x" }), "both a bundle and an error"},
		{"no manifest", mutate(t, good, func(m map[string]any) { delete(m, "manifest") }), "manifest:"},
		{"bad bundle", mutate(t, good, func(m map[string]any) { m["bundle"] = map[string]any{"mediaType": "x"} }), "unknown media type"},
		{"other input", mutate(t, good, func(m map[string]any) { m["inputDigest"] = otherInput }), "the attestation is for input"},
		{"manifest without bundle", mutate(t, good, func(m map[string]any) { delete(m, "bundle"); m["error"] = "x" }), "a manifest without a bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVote(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// A genuine attestation of another spec, offered for this input.
	b := testBundle(t, nodes[0].signer, otherSpec, map[string]string{"demo": hexDigest("x")})
	if _, err := NewVote(testVoteFor(testPolicyDigest, input, "node-a"), b, "sha256:"+hexDigest("m")); err == nil || !strings.Contains(err.Error(), "the attestation is for input") {
		t.Fatalf("got %v, want the vote refused for binding another input", err)
	}
}

// TestTestdata keeps the fuzz seeds valid (and rewrites them with -update).
func TestTestdata(t *testing.T) {
	nodes := testNodes(t, 1)
	spec, input := testSpec(t, "demo:1")
	if *update {
		req, _ := validRequest(t).Marshal()
		vote, _ := testVote(t, testPolicyDigest, nodes[0], spec, input, "artifact").Marshal()
		fv, _ := NewFailedVote(VoteFor{Policy: testPolicyDigest, Request: testRequestID(input), InputDigest: input, Node: "node-a", Time: time.UnixMilli(1764547200000)}, "compile error")
		failed, _ := fv.Marshal()
		for name, b := range map[string][]byte{"request.json": req, "vote.json": vote, "vote-failed.json": failed} {
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"request.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseBuildRequest(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"vote.json", "vote-failed.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseVote(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
