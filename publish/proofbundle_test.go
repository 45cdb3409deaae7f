package publish

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite the samples in testdata")

const testOrigin = "pyrsia.example/log"

// testSigners returns note signers made from fixed seeds, so that the
// samples in testdata come out the same each time, and their verifier keys.
func testSigners(t testing.TB) ([]note.Signer, []string) {
	t.Helper()
	var signers []note.Signer
	var vkeys []string
	for _, name := range []string{testOrigin, "node-a", "node-b"} {
		seed := sha256.Sum256([]byte("pyrsia-build testdata " + name))
		skey, vkey, err := note.GenerateKey(bytes.NewReader(seed[:]), name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
		vkeys = append(vkeys, vkey)
	}
	return signers, vkeys
}

// testLog is a log of n sample entries with a signed checkpoint.
type testLog struct {
	entries    [][]byte
	tree       *testonly.Tree
	checkpoint string
}

func newTestLog(t testing.TB, n int) *testLog {
	t.Helper()
	l := &testLog{tree: testonly.New(rfc6962.DefaultHasher)}
	for i := range n {
		e := sampleEntry(t)
		e.Coordinate = fmt.Sprintf("hello:1.%d", i)
		e.Spec = json.RawMessage(fmt.Sprintf(`{"coordinate":"hello:1.%d","ecosystem":"oci"}`, i))
		e.InputDigest = e.SpecDigest()
		b := mustMarshal(t, e)
		l.entries = append(l.entries, b)
		l.tree.AppendData(b)
	}
	signers, _ := testSigners(t)
	body := fmt.Sprintf("%s\n%d\n%s\n", testOrigin, n, base64.StdEncoding.EncodeToString(l.tree.Hash()))
	cp, err := note.Sign(&note.Note{Text: body}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	l.checkpoint = string(cp)
	return l
}

func (l *testLog) bundle(t testing.TB, index uint64) *ProofBundle {
	t.Helper()
	hashes, err := l.tree.InclusionProof(index, l.tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	return &ProofBundle{
		RawEntry:       l.entries[index],
		Index:          index,
		TreeSize:       l.tree.Size(),
		InclusionProof: hashes,
		Checkpoint:     l.checkpoint,
	}
}

func mustMarshalBundle(t testing.TB, p *ProofBundle) []byte {
	t.Helper()
	b, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProofBundleRoundTrip(t *testing.T) {
	l := newTestLog(t, 13)
	for _, index := range []uint64{0, 5, 12} {
		t.Run(fmt.Sprint(index), func(t *testing.T) {
			p := l.bundle(t, index)
			b := mustMarshalBundle(t, p)
			if !bytes.HasPrefix(b, []byte(`{"mediaType":"`+ProofBundleMediaType+`","entry":"`)) {
				t.Errorf("encoding starts %.80s", b)
			}
			// json.Marshal of a value and of a pointer both use MarshalJSON.
			if jb, err := json.Marshal(*p); err != nil || !bytes.Equal(jb, b) {
				t.Errorf("json.Marshal(bundle) = %s, %v; want %s", jb, err, b)
			}
			got, err := ParseProofBundle(b)
			if err != nil {
				t.Fatalf("ParseProofBundle: %v", err)
			}
			if got.Index != index || got.TreeSize != 13 || got.Checkpoint != l.checkpoint || got.MediaType != ProofBundleMediaType {
				t.Errorf("parsed bundle differs: %+v", got)
			}
			e, err := got.Entry()
			if err != nil {
				t.Fatalf("Entry: %v", err)
			}
			if want := fmt.Sprintf("hello:1.%d", index); e.Coordinate != want {
				t.Errorf("entry coordinate %q, want %q", e.Coordinate, want)
			}
			// The bundle's pieces fit together: the proof leads from the
			// entry's leaf hash to the tree's root.
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, got.Index, got.TreeSize, LeafHash(got.RawEntry), got.InclusionProof, l.tree.Hash()); err != nil {
				t.Errorf("inclusion proof does not verify: %v", err)
			}
			if _, err := ParseProofBundle(append(b, '\n')); err != nil {
				t.Errorf("with a trailing newline: %v", err)
			}
		})
	}
}

func TestInclusionProofLen(t *testing.T) {
	tree := testonly.New(rfc6962.DefaultHasher)
	for size := uint64(1); size <= 70; size++ {
		tree.AppendData([]byte{byte(size)})
		for index := uint64(0); index < size; index++ {
			hashes, err := tree.InclusionProof(index, size)
			if err != nil {
				t.Fatal(err)
			}
			if got := InclusionProofLen(index, size); got != len(hashes) {
				t.Fatalf("InclusionProofLen(%d, %d) = %d, want %d", index, size, got, len(hashes))
			}
		}
	}
	if got := InclusionProofLen(0, 1<<63+1); got != 64 {
		t.Errorf("InclusionProofLen(0, 2^63+1) = %d, want 64", got)
	}
}

// policyChangesJSON is a policyChanges field of entries "{}" at indexes,
// with proofs of the right length for a tree of 13.
func policyChangesJSON(indexes ...uint64) string {
	var parts []string
	for _, i := range indexes {
		var hashes []string
		for range InclusionProofLen(i%13, 13) {
			hashes = append(hashes, `"`+base64.StdEncoding.EncodeToString(make([]byte, 32))+`"`)
		}
		parts = append(parts, fmt.Sprintf(`{"index":%d,"entry":"e30=","inclusionProof":[%s]}`, i, strings.Join(hashes, ",")))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// v2 sets the media type of a bundle's JSON to version 2.
func v2(t *testing.T, b []byte) []byte {
	t.Helper()
	return bytes.Replace(b, []byte(ProofBundleMediaType), []byte(ProofBundleV2MediaType), 1)
}

func TestProofBundleV2RoundTrip(t *testing.T) {
	l := newTestLog(t, 13)
	p := l.bundle(t, 5)
	p.MediaType = ""
	p.PolicyChanges = []PolicyChangeProof{{Index: 2, RawEntry: []byte("{}"), InclusionProof: l.bundle(t, 2).InclusionProof}}
	b := mustMarshalBundle(t, p)
	if !bytes.Contains(b, []byte(ProofBundleV2MediaType)) || !bytes.HasSuffix(b, []byte(`]}]}`)) {
		t.Fatalf("got %s, want a v2 bundle with policyChanges last", b)
	}
	got, err := ParseProofBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.PolicyChanges) != 1 || got.PolicyChanges[0].Index != 2 || !IsProofBundle(b) {
		t.Errorf("got %+v", got.PolicyChanges)
	}
	// Without changes the bundle stays version 1, byte for byte.
	p.PolicyChanges, p.MediaType = nil, ""
	if b := mustMarshalBundle(t, p); !bytes.Contains(b, []byte(ProofBundleMediaType)) || bytes.Contains(b, []byte("policyChanges")) {
		t.Errorf("got %s, want a v1 bundle", b)
	}
}

func TestProofBundleErrors(t *testing.T) {
	l := newTestLog(t, 13)
	p := l.bundle(t, 5)
	good := mustMarshalBundle(t, p)
	h0 := `"` + base64.StdEncoding.EncodeToString(p.InclusionProof[0]) + `"`
	set := func(field, value string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			if value == "" {
				delete(m, field)
			} else {
				m[field] = json.RawMessage(value)
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	cp := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name  string
		input func(t *testing.T) []byte
		want  string
	}{
		{"empty", func(*testing.T) []byte { return nil }, "publish: proof bundle: empty"},
		{"newline", func(*testing.T) []byte { return []byte("\n") }, "publish: proof bundle: empty"},
		{"oversize", func(*testing.T) []byte { return make([]byte, MaxProofBundleSize+1) }, "over the 8388608 byte limit"},
		{"not json", func(*testing.T) []byte { return []byte("-----BEGIN") }, "not JSON"},
		{"truncated", func(*testing.T) []byte { return good[:len(good)-10] }, "JSON ends early"},
		{"not object", func(*testing.T) []byte { return []byte(`"x"`) }, "not a JSON object (found string)"},
		{"no media type", set("mediaType", ""), "missing mediaType (not a proof bundle?)"},
		{"sigstore bundle", set("mediaType", `"application/vnd.dev.sigstore.bundle.v0.3+json"`), `media type "application/vnd.dev.sigstore.bundle.v0.3+json", want "application/vnd.pyrsia.proof-bundle.v1+json"`},
		{"media type number", set("mediaType", `1`), "media type 1, want"},
		{"v1 with policy changes", set("policyChanges", policyChangesJSON(3)), "carries no policy changes"},
		{"v2 without policy changes", set("mediaType", `"`+ProofBundleV2MediaType+`"`), "without policy changes"},
		{"policy change past the end", func(t *testing.T) []byte { return v2(t, set("policyChanges", policyChangesJSON(13))(t)) }, "policy change 0 (index 13): not in a tree of size 13"},
		{"policy change at the entry", func(t *testing.T) []byte { return v2(t, set("policyChanges", policyChangesJSON(5))(t)) }, "the bundle's entry is at that index"},
		{"policy changes out of order", func(t *testing.T) []byte { return v2(t, set("policyChanges", policyChangesJSON(4, 2))(t)) }, "policy change 1 (index 2): not after the one before"},
		{"policy changes twice", func(t *testing.T) []byte { return v2(t, set("policyChanges", policyChangesJSON(4, 4))(t)) }, "listed once each"},
		{"policy change short proof", func(t *testing.T) []byte {
			return v2(t, set("policyChanges", `[{"index":3,"entry":"e30=","inclusionProof":[]}]`)(t))
		}, "policy change 0 (index 3): inclusion proof has 0 hashes, want 4"},
		{"entry bad base64", set("entry", `"e30"`), "entry: not valid base64"},
		{"entry not string", set("entry", `{}`), "entry: not a base64 string"},
		{"no entry", set("entry", ""), "missing entry"},
		{"proof not list", set("inclusionProof", `"abc="`), "inclusionProof is not a list of base64 strings"},
		{"proof bad base64", set("inclusionProof", `[`+h0+`,"%%%%"]`), "inclusion proof hash 1: not valid base64"},
		{"proof hash short", set("inclusionProof", `[`+h0+`,"AAAA"]`), "inclusion proof hash 1 is 3 bytes, want 32"},
		{"proof too long", set("inclusionProof", `[`+strings.Repeat(h0+`,`, 64)+h0+`]`), "inclusion proof has 65 hashes, more than 64"},
		{"proof too short", set("inclusionProof", `[`+h0+`]`), "inclusion proof has 1 hashes, want 4 for index 5 in a tree of size 13"},
		{"proof null", set("inclusionProof", `null`), "inclusion proof has 0 hashes, want 4"},
		{"index past end", set("index", `13`), "index 13 is not in a tree of size 13"},
		{"index negative", set("index", `-1`), "field index: JSON number -1"},
		{"tree size 0", set("treeSize", `0`), "tree size is 0"},
		{"unknown field", set("attestations", `[]`), `unknown field "attestations"`},
		{"no checkpoint", set("checkpoint", `""`), "missing checkpoint"},
		{"checkpoint no newline", set("checkpoint", cp(strings.TrimSuffix(l.checkpoint, "\n"))), "does not end with a newline"},
		{"checkpoint unsigned", set("checkpoint", cp(testOrigin+"\n13\nAAAA\n")), "no blank line between the text and the signature lines"},
		{"checkpoint bad signature line", set("checkpoint", cp(testOrigin+"\n13\n"+root+"\n\n— x y\n")), `signature line 1 is not "— <name> <base64 key hash and signature>"`},
		{"checkpoint short body", set("checkpoint", cp(testOrigin+"\n13\n\n— x AAAAAAAA\n")), "2 lines, want at least 3 (origin, size, root hash)"},
		{"checkpoint bad size", set("checkpoint", cp(testOrigin+"\n013\n"+root+"\n\n— x AAAAAAAA\n")), `size "013" is not a decimal number`},
		{"checkpoint bad root", set("checkpoint", cp(testOrigin+"\n13\nAAAA\n\n— x AAAAAAAA\n")), "root hash is 3 bytes, want 32"},
		{"checkpoint other size", set("checkpoint", cp(testOrigin+"\n14\n"+root+"\n\n— x AAAAAAAA\n")), "checkpoint is for a tree of size 14, the proof for size 13"},
		{"checkpoint huge", set("checkpoint", cp(strings.Repeat("x", MaxCheckpointSize)+"\n")), "checkpoint note is 65537 bytes, over the 65536 byte limit"},
		{"trailing data", func(*testing.T) []byte { return append(slicesClone(good), `{}`...) }, "trailing data"},
		{"two newlines", func(*testing.T) []byte { return append(slicesClone(good), "\n\n"...) }, "not in canonical form"},
		{"reordered", set("checkpoint", cp(l.checkpoint)), "not in canonical form"}, // map order sorts keys
		{"indented", func(t *testing.T) []byte {
			var buf bytes.Buffer
			if err := json.Indent(&buf, good, "", "  "); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}, "not in canonical form"},
		{"non-canonical base64", func(t *testing.T) []byte {
			// "QR==" decodes like "QQ==" but sets bits it should not.
			x := replaceOnce(t, good, `"entry":"`, `"entry":"QR==`)
			return replaceOnce(t, x, `QR==`+base64.StdEncoding.EncodeToString(p.RawEntry), `QR==`)
		}, "entry: not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProofBundle(tt.input(t))
			if err == nil {
				t.Fatalf("ParseProofBundle: no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "publish: proof bundle: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want one starting %q and containing %q", err, "publish: proof bundle: ", tt.want)
			}
		})
	}
}

func TestProofBundleEntryError(t *testing.T) {
	l := newTestLog(t, 1)
	p := l.bundle(t, 0)
	p.RawEntry = []byte(`{"v":1,"kind":"rename"}`)
	b := mustMarshalBundle(t, p)
	got, err := ParseProofBundle(b)
	if err != nil {
		t.Fatalf("ParseProofBundle: %v (it should leave the entry to Entry)", err)
	}
	if _, err := got.Entry(); err == nil || !strings.Contains(err.Error(), `unknown kind "rename"`) {
		t.Errorf("Entry: got %v, want an unknown kind error", err)
	}
}

// TestWriteTestdata rewrites the samples in testdata when run with -update:
//
//	go test ./publish -run TestWriteTestdata -update
//
// The samples come out the same each time.
func TestWriteTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata")
	}
	write := func(name string, b []byte) {
		t.Helper()
		path := filepath.Join("testdata", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Entries: no trailing newline, the bytes are the leaf.
	oci := mustMarshal(t, sampleEntry(t))
	write("entry/valid-oci.json", oci)
	maven := sampleEntry(t)
	maven.Ecosystem, maven.Coordinate = EcosystemMaven, "org.example:hello:1.0"
	maven.Spec = json.RawMessage(`{"builder":"maven@sha256:` + strings.Repeat("ab", 32) + `","coordinate":"org.example:hello:1.0","ecosystem":"maven","recipe":{"goals":["package"],"module":"."},"source":{"archive":"hello-1.0.tar.gz","sha256":"` + strings.Repeat("cd", 32) + `"}}`)
	maven.InputDigest = maven.SpecDigest()
	maven.Subjects = []Subject{
		{Name: "hello-1.0.pom", Digest: digestOf("pom")},
		{Name: "hello-1.0.jar", Digest: digestOf("jar")},
	}
	maven.Envelopes = maven.Envelopes[:2]
	maven.Envelopes[0].Signatures = []*dssepb.Signature{{Keyid: "node-a", Sig: []byte("sig-node-a")}}
	write("entry/valid-maven.json", mustMarshal(t, maven))
	write("entry/invalid-version-2.json", bytes.Replace(oci, []byte(`"v":1`), []byte(`"v":2`), 1))
	write("entry/invalid-kind-policy.json", bytes.Replace(oci, []byte(`"kind":"publish"`), []byte(`"kind":"policy"`), 1))
	write("entry/invalid-pretty.json", indent(t, oci))
	write("entry/invalid-no-subjects.json", regexpReplace(oci, `"subjects":\[[^\]]*\]`, `"subjects":[]`))
	write("entry/invalid-truncated.json", oci[:len(oci)-1])
	write("entry/invalid-input-digest.json", regexpReplace(oci, `"inputDigest":"[^"]*"`, `"inputDigest":"`+digestOf("another spec")+`"`))

	// Proof bundles: a trailing newline, as a file written by the CLI.
	l := newTestLog(t, 13)
	for _, index := range []uint64{0, 5, 12} {
		write(fmt.Sprintf("proofbundle/valid-index-%d-of-13.json", index), append(mustMarshalBundle(t, l.bundle(t, index)), '\n'))
	}
	one := newTestLog(t, 1)
	write("proofbundle/valid-index-0-of-1.json", append(mustMarshalBundle(t, one.bundle(t, 0)), '\n'))
	good := mustMarshalBundle(t, l.bundle(t, 5))
	withChange := l.bundle(t, 5)
	withChange.MediaType = ""
	withChange.PolicyChanges = []PolicyChangeProof{{Index: 2, RawEntry: l.bundle(t, 2).RawEntry, InclusionProof: l.bundle(t, 2).InclusionProof}}
	write("proofbundle/valid-v2-index-5-of-13.json", append(mustMarshalBundle(t, withChange), '\n'))
	write("proofbundle/invalid-pretty.json", indent(t, good))
	write("proofbundle/invalid-media-type.json", bytes.Replace(good, []byte(ProofBundleMediaType), []byte("application/vnd.dev.sigstore.bundle.v0.3+json"), 1))
	write("proofbundle/invalid-index-past-end.json", bytes.Replace(good, []byte(`"index":5`), []byte(`"index":13`), 1))
	write("proofbundle/invalid-short-proof.json", regexpReplace(good, `"inclusionProof":\["[^"]*",`, `"inclusionProof":[`))
	_, vkeys := testSigners(t)
	write("proofbundle/checkpoint.vkeys", []byte(strings.Join(vkeys, "\n")+"\n"))
}

func indent(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzParseProofBundle(f *testing.F) {
	for _, s := range fuzzSeeds(f, "proofbundle") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProofBundle(b)
		if err != nil {
			if p != nil {
				t.Fatal("ParseProofBundle returned a bundle and an error")
			}
			if !strings.HasPrefix(err.Error(), "publish: proof bundle: ") {
				t.Fatalf("error %q lacks the publish: proof bundle: prefix", err)
			}
			return
		}
		out, err := p.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a parsed bundle: %v", err)
		}
		if !bytes.Equal(out, bytes.TrimSuffix(b, []byte("\n"))) {
			t.Fatalf("re-encoding differs:\n got %q\nwant %q", out, b)
		}
		if p.Index >= p.TreeSize || len(p.InclusionProof) != InclusionProofLen(p.Index, p.TreeSize) {
			t.Fatalf("accepted index %d, tree size %d, %d proof hashes", p.Index, p.TreeSize, len(p.InclusionProof))
		}
		if e, err := p.Entry(); err == nil {
			if eb, err := e.MarshalBinary(); err != nil || !bytes.Equal(eb, p.RawEntry) {
				t.Fatalf("entry re-encodes differently: %v", err)
			}
		}
	})
}

func ExampleParseProofBundle() {
	b, err := os.ReadFile("testdata/proofbundle/valid-index-5-of-13.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := ParseProofBundle(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := p.Entry()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("entry %d of %d: %s %s, %d proof hashes, leaf %x…\n",
		p.Index, p.TreeSize, e.Ecosystem, e.Coordinate, len(p.InclusionProof), LeafHash(p.RawEntry)[:4])
	// Output:
	// entry 5 of 13: oci hello:1.5, 4 proof hashes, leaf c6038904…
}

func regexpReplace(b []byte, expr, repl string) []byte {
	return regexp.MustCompile(expr).ReplaceAll(b, []byte(repl))
}

// A proof bundle with trailing data is told as such, not taken for
// another kind of file.
func TestProofBundleTrailingData(t *testing.T) {
	b, err := os.ReadFile("testdata/proofbundle/valid-index-5-of-13.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tail := range []string{`{}`, "garbage", "\n{\"x\":1}"} {
		data := append(append([]byte(nil), b...), tail...)
		if !IsProofBundle(data) {
			t.Errorf("trailing %q: IsProofBundle = false, want true", tail)
		}
		_, err := ParseProofBundle(data)
		if err == nil || !strings.Contains(err.Error(), "trailing data after the JSON value") {
			t.Errorf("trailing %q: got %v, want an error saying trailing data", tail, err)
		}
	}
	if IsProofBundle([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)) {
		t.Error("IsProofBundle of a Sigstore bundle = true")
	}
}
