package attest_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pyrsia/pyrsia-build/attest"
)

const (
	digestHello = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" // sha256("hello\n")
	testPred    = `"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"x"}}`
)

func TestParseStatement(t *testing.T) {
	subject := `"subject":[{"name":"a.txt","digest":{"sha256":"` + digestHello + `"}}]`
	tests := []struct {
		name     string
		in       string
		wantType string // on success
		wantErr  string // substring, on failure
	}{
		{
			name:     "v1",
			in:       `{"_type":"https://in-toto.io/Statement/v1",` + subject + `,` + testPred + `}`,
			wantType: attest.StatementTypeV1,
		},
		{
			name:     "v0.1 keeps its _type",
			in:       `{"_type":"https://in-toto.io/Statement/v0.1",` + subject + `,` + testPred + `}`,
			wantType: attest.StatementTypeV01,
		},
		{
			name:     "proto field names",
			in:       `{"_type":"https://in-toto.io/Statement/v1",` + subject + `,"predicate_type":"p","predicate":{}}`,
			wantType: attest.StatementTypeV1,
		},
		{
			name:    "unknown _type",
			in:      `{"_type":"https://in-toto.io/Statement/v2",` + subject + `,` + testPred + `}`,
			wantErr: `attest: statement: unknown _type "https://in-toto.io/Statement/v2"`,
		},
		{
			name:    "missing _type",
			in:      `{` + subject + `,` + testPred + `}`,
			wantErr: "attest: statement: missing _type",
		},
		{
			name:    "missing subject",
			in:      `{"_type":"https://in-toto.io/Statement/v1",` + testPred + `}`,
			wantErr: "attest: statement: at least one subject required",
		},
		{
			name:    "empty subject list",
			in:      `{"_type":"https://in-toto.io/Statement/v1","subject":[],` + testPred + `}`,
			wantErr: "attest: statement: at least one subject required",
		},
		{
			name:    "subject without digest",
			in:      `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.txt"}],` + testPred + `}`,
			wantErr: "attest: statement: at least one digest required",
		},
		{
			name:    "v0.1 subject without digest",
			in:      `{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a.txt"}],` + testPred + `}`,
			wantErr: "attest: statement: at least one digest required",
		},
		{
			name:    "sha256 digest not hex",
			in:      `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.txt","digest":{"sha256":"zz"}}],` + testPred + `}`,
			wantErr: "attest: statement: digest is not valid hex",
		},
		{
			name:    "sha256 digest short",
			in:      `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.txt","digest":{"sha256":"abcd"}}],` + testPred + `}`,
			wantErr: "attest: statement: digest has incorrect length",
		},
		{
			name:    "missing predicateType",
			in:      `{"_type":"https://in-toto.io/Statement/v1",` + subject + `,"predicate":{}}`,
			wantErr: "attest: statement: predicate type required",
		},
		{
			name:    "missing predicate",
			in:      `{"_type":"https://in-toto.io/Statement/v1",` + subject + `,"predicateType":"p"}`,
			wantErr: "attest: statement: predicate object required",
		},
		{
			name:    "unknown top-level field",
			in:      `{"_type":"https://in-toto.io/Statement/v1",` + subject + `,` + testPred + `,"extra":1}`,
			wantErr: `unknown field "extra"`,
		},
		{
			name:    "not JSON",
			in:      `_type: v1`,
			wantErr: "attest: statement: not a valid in-toto statement",
		},
		{
			name:    "JSON array",
			in:      `[]`,
			wantErr: "attest: statement: not a valid in-toto statement",
		},
		{
			name:    "empty",
			in:      ``,
			wantErr: "attest: statement: not a valid in-toto statement",
		},
		{
			name:    "oversize",
			in:      `{"_type":"https://in-toto.io/Statement/v1",` + subject + `,` + testPred + `}` + strings.Repeat(" ", attest.MaxStatementSize),
			wantErr: "bytes is over the 16777216 byte limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := attest.ParseStatement([]byte(tt.in))
			if tt.wantErr != "" {
				wantErrContains(t, err, tt.wantErr)
				if st != nil {
					t.Errorf("got a statement with the error, want nil")
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if got := st.GetType(); got != tt.wantType {
				t.Errorf("_type: got %q, want %q", got, tt.wantType)
			}
		})
	}
}

func TestNewStatement(t *testing.T) {
	pred := testProvenance(t)
	subjects := []*intoto.ResourceDescriptor{subjectOf("a.txt", []byte("hello\n")), subjectOf("b.txt", []byte("b"))}

	st, err := attest.NewStatement(subjects, attest.PredicateSLSAProvenanceV1, pred)
	if err != nil {
		t.Fatalf("NewStatement: %v", err)
	}
	if got, want := st.GetType(), attest.StatementTypeV1; got != want {
		t.Errorf("_type: got %q, want %q", got, want)
	}
	first, err := attest.MarshalStatement(st)
	if err != nil {
		t.Fatalf("MarshalStatement: %v", err)
	}
	second, err := attest.MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("MarshalStatement is not stable:\n%s\n%s", first, second)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, first); err != nil {
		t.Fatalf("MarshalStatement output is not JSON: %v", err)
	}
	if !bytes.Equal(compact.Bytes(), first) {
		t.Errorf("MarshalStatement output is not compact:\n%s", first)
	}
	back, err := attest.ParseStatement(first)
	if err != nil {
		t.Fatalf("ParseStatement(MarshalStatement()): %v", err)
	}
	if !proto.Equal(back, st) {
		t.Errorf("round trip changed the statement:\ngot  %v\nwant %v", back, st)
	}
	if got, want := back.GetPredicate().GetFields()["runDetails"].GetStructValue().GetFields()["builder"].GetStructValue().GetFields()["id"].GetStringValue(), "https://pyrsia.io/node/test"; got != want {
		t.Errorf("predicate runDetails.builder.id: got %q, want %q", got, want)
	}

	t.Run("struct predicate is used as is", func(t *testing.T) {
		s, err := structpb.NewStruct(map[string]any{"k": "v"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := attest.NewStatement(subjects, "https://example.com/p", s)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(st.GetPredicate(), s) {
			t.Errorf("got predicate %v, want %v", st.GetPredicate(), s)
		}
	})

	errTests := []struct {
		name     string
		subjects []*intoto.ResourceDescriptor
		predType string
		want     string
	}{
		{"no subjects", nil, attest.PredicateSLSAProvenanceV1, "attest: statement: at least one subject required"},
		{"subject without digest", []*intoto.ResourceDescriptor{{Name: "a"}}, attest.PredicateSLSAProvenanceV1, "attest: statement: at least one digest required"},
		{"no predicate type", subjects, "", "attest: statement: predicate type required"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := attest.NewStatement(tt.subjects, tt.predType, pred)
			wantErrContains(t, err, tt.want)
			if st != nil {
				t.Errorf("got a statement with the error, want nil")
			}
		})
	}
}

func TestNewProvenance(t *testing.T) {
	valid := attest.ProvenanceOptions{
		BuildType:          "https://pyrsia.io/build/test/v1",
		ExternalParameters: map[string]any{"n": 1, "list": []any{"a", true}},
		BuilderID:          "https://pyrsia.io/node/a",
	}
	t.Run("minimal has no metadata", func(t *testing.T) {
		p, err := attest.NewProvenance(valid)
		if err != nil {
			t.Fatal(err)
		}
		if md := p.GetRunDetails().GetMetadata(); md != nil {
			t.Errorf("metadata: got %v, want none", md)
		}
		if got := p.GetBuildDefinition().GetExternalParameters().GetFields()["n"].GetNumberValue(); got != 1 {
			t.Errorf("externalParameters.n: got %v, want 1", got)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		o := valid
		o.InvocationID = "inv"
		o.StartedOn = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		p, err := attest.NewProvenance(o)
		if err != nil {
			t.Fatal(err)
		}
		md := p.GetRunDetails().GetMetadata()
		if got := md.GetInvocationId(); got != "inv" {
			t.Errorf("invocationId: got %q, want %q", got, "inv")
		}
		if got := md.GetStartedOn().AsTime(); !got.Equal(o.StartedOn) {
			t.Errorf("startedOn: got %v, want %v", got, o.StartedOn)
		}
		if md.GetFinishedOn() != nil {
			t.Errorf("finishedOn: got %v, want none", md.GetFinishedOn())
		}
	})

	errTests := []struct {
		name string
		edit func(o *attest.ProvenanceOptions)
		want string
	}{
		{"no build type", func(o *attest.ProvenanceOptions) { o.BuildType = "" }, "attest: provenance: "},
		{"no builder id", func(o *attest.ProvenanceOptions) { o.BuilderID = "" }, "attest: provenance: "},
		{"parameter not JSON", func(o *attest.ProvenanceOptions) { o.ExternalParameters = map[string]any{"f": func() {}} }, "attest: provenance: external parameters: "},
		{"dependency without name, uri or digest", func(o *attest.ProvenanceOptions) {
			o.ResolvedDependencies = []*intoto.ResourceDescriptor{{}}
		}, "attest: provenance: "},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.edit(&o)
			p, err := attest.NewProvenance(o)
			wantErrContains(t, err, tt.want)
			if p != nil {
				t.Errorf("got a predicate with the error, want nil")
			}
		})
	}
}
