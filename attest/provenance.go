package attest

import (
	"fmt"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// PredicateSLSAProvenanceV1 is the predicate type of SLSA provenance v1.
const PredicateSLSAProvenanceV1 = "https://slsa.dev/provenance/v1"

// ProvenanceOptions describe one build for a SLSA provenance v1 predicate.
type ProvenanceOptions struct {
	// BuildType is a URI naming the kind of build and the schema of
	// ExternalParameters.
	BuildType string
	// ExternalParameters are the inputs a user chose: the build spec.
	// They must be JSON-compatible (maps, slices, strings, numbers, bools).
	ExternalParameters map[string]any
	// ResolvedDependencies pin what the build used: source, builder image.
	ResolvedDependencies []*intoto.ResourceDescriptor
	// BuilderID is a URI naming the build node.
	BuilderID string
	// BuilderVersion records the versions of the builder's parts.
	BuilderVersion map[string]string
	// InvocationID, StartedOn and FinishedOn are optional metadata.
	InvocationID          string
	StartedOn, FinishedOn time.Time
}

// NewProvenance builds and validates a SLSA provenance v1 predicate.
func NewProvenance(o ProvenanceOptions) (*slsa.Provenance, error) {
	ext, err := structpb.NewStruct(o.ExternalParameters)
	if err != nil {
		return nil, fmt.Errorf("attest: provenance: external parameters: %w", err)
	}
	p := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            o.BuildType,
			ExternalParameters:   ext,
			ResolvedDependencies: o.ResolvedDependencies,
		},
		RunDetails: &slsa.RunDetails{
			Builder: &slsa.Builder{Id: o.BuilderID, Version: o.BuilderVersion},
		},
	}
	if o.InvocationID != "" || !o.StartedOn.IsZero() || !o.FinishedOn.IsZero() {
		md := &slsa.BuildMetadata{InvocationId: o.InvocationID}
		if !o.StartedOn.IsZero() {
			md.StartedOn = timestamppb.New(o.StartedOn)
		}
		if !o.FinishedOn.IsZero() {
			md.FinishedOn = timestamppb.New(o.FinishedOn)
		}
		p.RunDetails.Metadata = md
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("attest: provenance: %w", err)
	}
	return p, nil
}
