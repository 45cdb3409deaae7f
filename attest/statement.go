package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Statement types that [ParseStatement] accepts. Statements are always
// written as v1; v0.1 is what `cosign attest-blob` writes.
const (
	StatementTypeV1  = intoto.StatementTypeUri
	StatementTypeV01 = "https://in-toto.io/Statement/v0.1"
)

// MaxStatementSize bounds a statement payload. Statements with thousands
// of subjects stay far below it.
const MaxStatementSize = 16 << 20

// NewStatement builds an in-toto v1 statement about subjects with the given
// predicate, and validates it.
func NewStatement(subjects []*intoto.ResourceDescriptor, predicateType string, predicate proto.Message) (*intoto.Statement, error) {
	pred, err := toStruct(predicate)
	if err != nil {
		return nil, fmt.Errorf("attest: predicate: %w", err)
	}
	st := &intoto.Statement{
		Type:          StatementTypeV1,
		Subject:       subjects,
		PredicateType: predicateType,
		Predicate:     pred,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("attest: statement: %w", err)
	}
	return st, nil
}

// MarshalStatement encodes st as compact JSON, the payload of a DSSE
// envelope.
func MarshalStatement(st *intoto.Statement) ([]byte, error) {
	return marshalCompact(st)
}

// ParseStatement decodes and validates an in-toto statement (v1 or v0.1).
// Unknown fields are rejected.
func ParseStatement(payload []byte) (*intoto.Statement, error) {
	return parseStatement(payload, true)
}

// parseStatement is ParseStatement, with parseStatementFast first when
// fast (the differential tests hold the two paths to each other).
func parseStatement(payload []byte, fast bool) (*intoto.Statement, error) {
	if len(payload) > MaxStatementSize {
		return nil, fmt.Errorf("attest: statement: %d bytes is over the %d byte limit", len(payload), MaxStatementSize)
	}
	// parseStatementFast decodes the common statements as protojson
	// would, at a fraction of its cost; what it gives up on (the rare
	// forms and every error) protojson decodes or words.
	var st *intoto.Statement
	ok := false
	if fast {
		st, ok = parseStatementFast(payload)
	}
	if !ok {
		st = new(intoto.Statement)
		if err := protojson.Unmarshal(payload, st); err != nil {
			return nil, fmt.Errorf("attest: statement: not a valid in-toto statement: %w", err)
		}
	}
	typ := st.GetType()
	switch typ {
	case StatementTypeV1:
	case StatementTypeV01:
		// v0.1 has the same shape; validate it by the v1 rules.
		st.Type = StatementTypeV1
		defer func() { st.Type = typ }()
	case "":
		return nil, errors.New("attest: statement: missing _type")
	default:
		return nil, fmt.Errorf("attest: statement: unknown _type %q (want %q)", typ, StatementTypeV1)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("attest: statement: %w", err)
	}
	return st, nil
}

// toStruct turns a proto message into a structpb.Struct through its JSON
// form, which is how predicates travel inside a statement.
func toStruct(m proto.Message) (*structpb.Struct, error) {
	if s, ok := m.(*structpb.Struct); ok {
		return s, nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := new(structpb.Struct)
	if err := protojson.Unmarshal(b, s); err != nil {
		return nil, err
	}
	return s, nil
}

// marshalCompact encodes m with protojson and removes the whitespace that
// protojson deliberately varies between runs, so equal messages give equal
// bytes within one build of the program.
func marshalCompact(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
