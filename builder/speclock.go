package builder

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// SetSpecLock returns the spec file data with recipe.maven.lock set to
// ref, keeping the rest of the document (comments included) as it was, as
// far as YAML re-encoding allows; a JSON spec comes back as YAML. The
// result is checked with [ParseSpec].
func SetSpecLock(data []byte, ref LockRef) ([]byte, error) {
	if _, err := ParseSpec(data); err != nil {
		// A spec without a lock is valid; one with a stale lock digest is
		// too. Anything else must be fixed first.
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &SpecError{Msg: "not valid YAML: " + err.Error(), Err: err}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &SpecError{Msg: "not one YAML document"}
	}
	maven, err := mappingAt(doc.Content[0], "recipe", "maven")
	if err != nil {
		return nil, err
	}
	lockNode := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "path"}, {Kind: yaml.ScalarNode, Value: ref.Path},
		{Kind: yaml.ScalarNode, Value: "sha256"}, {Kind: yaml.ScalarNode, Value: ref.SHA256, Style: yaml.DoubleQuotedStyle},
	}}
	set := false
	for i := 0; i+1 < len(maven.Content); i += 2 {
		if maven.Content[i].Value == "lock" {
			maven.Content[i+1] = lockNode
			set = true
		}
	}
	if !set {
		maven.Content = append(maven.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "lock"}, lockNode)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("spec: encoding: %w", err)
	}
	enc.Close()
	if _, err := ParseSpec(out.Bytes()); err != nil {
		return nil, fmt.Errorf("spec: the spec with its new lock does not parse (a bug): %w", err)
	}
	return out.Bytes(), nil
}

// mappingAt follows keys from a mapping node (through aliases) to a
// mapping.
func mappingAt(n *yaml.Node, keys ...string) (*yaml.Node, error) {
	field := ""
	for _, k := range keys {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n.Kind != yaml.MappingNode {
			return nil, fieldErr(field, "not a mapping")
		}
		field = joinField(field, k)
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil, fieldErr(field, "missing (a lock is for maven specs)")
		}
		n = next
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, fieldErr(field, "not a mapping")
	}
	return n, nil
}
