package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pyrsia/pyrsia-build/internal/fileread"
	"go.yaml.in/yaml/v3"
)

// ConfigVersion is the version of the node configuration file this
// package reads.
const ConfigVersion = 1

// MaxConfigSize bounds a configuration file.
const MaxConfigSize = 64 << 10

// Config is a node's configuration file (`pyrsia-build node --config
// FILE`), YAML: every flag of `pyrsia-build node` under the name given in
// its yaml tag. A field left out is unset (the flag's default applies);
// a flag given on the command line overrides the file. Relative paths are
// relative to the file's folder. Unknown and repeated fields are errors,
// and so are the fields of the other kind of node ([Config.CheckKind]).
// deploy/node.example.yaml explains the fields of a build node,
// deploy/regular.example.yaml those of a regular node.
type Config struct {
	// Version is 1 (optional).
	Version int `yaml:"version"`
	// Build runs a build node; false or left out, a regular node.
	Build *bool `yaml:"build"`
	// Data is the node's data folder.
	Data string `yaml:"data"`
	// Policy is the network policy file.
	Policy string `yaml:"policy"`
	// FirstPolicy is the network's first policy file, for a node a
	// policy change added (see [Options].FirstPolicy); "" means Policy.
	FirstPolicy string `yaml:"firstPolicy"`
	// Listen are libp2p listen multiaddrs.
	Listen []string `yaml:"listen"`
	// Bootstrap are peers to connect to at start (multiaddrs ending in
	// /p2p/<peer id>).
	Bootstrap []string `yaml:"bootstrap"`
	// API is the local HTTP API's HOST:PORT; "" means none.
	API *string `yaml:"api"`
	// BuildkitAddr is a running buildkitd to use instead of starting one.
	BuildkitAddr string `yaml:"buildkitAddr"`
	// Images is the builder image store.
	Images string `yaml:"images"`
	// MaxBuilds bounds the builds that run at once.
	MaxBuilds int `yaml:"maxBuilds"`
	// Deadline is how long a request waits for a quorum.
	Deadline time.Duration `yaml:"deadline"`
	// AllowSourceHosts are source hosts that are not public that specs
	// may fetch from (HOST or HOST:PORT).
	AllowSourceHosts []string `yaml:"allowSourceHosts"`
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string `yaml:"logLevel"`
	LogFormat string `yaml:"logFormat"`
	// StoreMaxBytes bounds a regular node's blob store (a build node
	// takes --store-max-bytes).
	StoreMaxBytes int64 `yaml:"storeMaxBytes"`
	// HTTP is a regular node's HTTP HOST:PORT for build tools; "" means
	// none.
	HTTP *string `yaml:"http"`
	// LogURL is a tlog-tiles mirror a regular node reads the log from,
	// before its bootstrap peers (RegularOptions.LogURL).
	LogURL string `yaml:"logUrl"`

	file  string
	lines map[string]int // the line of each field given
}

// buildOnly and regularOnly are the fields of one kind of node only.
var (
	buildOnly   = []string{"api", "buildkitAddr", "images", "maxBuilds", "deadline", "allowSourceHosts", "firstPolicy"}
	regularOnly = []string{"http", "logUrl", "storeMaxBytes"}
)

// CheckKind returns a *ConfigError for the first field, in file order,
// that the kind of node (a build node, or a regular one) does not take.
func (c *Config) CheckKind(build bool) error {
	other, kind, is := buildOnly, "a build node's", "a regular node (build: false or left out, and no --build)"
	if build {
		other, kind, is = regularOnly, "a regular node's", "a build node"
	}
	field, line := "", 0
	for _, f := range other {
		if l, ok := c.lines[f]; ok && (field == "" || l < line) {
			field, line = f, l
		}
	}
	if field == "" {
		return nil
	}
	return &ConfigError{File: c.file, Line: line, Field: field, Err: fmt.Errorf("is %s field, and this configuration runs %s", kind, is)}
}

// ConfigError is an error in a configuration file, naming the file, the
// line and the field.
type ConfigError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// configFields are the fields of Config by YAML name, each with a decoder
// of its value node.
var configFields = map[string]func(c *Config, v *yaml.Node) error{
	"version":          func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!int", &c.Version) },
	"build":            func(c *Config, v *yaml.Node) error { c.Build = new(bool); return decodeScalar(v, "!!bool", c.Build) },
	"data":             func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.Data) },
	"policy":           func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.Policy) },
	"firstPolicy":      func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.FirstPolicy) },
	"listen":           func(c *Config, v *yaml.Node) error { return decodeStrings(v, &c.Listen) },
	"bootstrap":        func(c *Config, v *yaml.Node) error { return decodeStrings(v, &c.Bootstrap) },
	"api":              func(c *Config, v *yaml.Node) error { c.API = new(string); return decodeScalar(v, "!!str", c.API) },
	"buildkitAddr":     func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.BuildkitAddr) },
	"images":           func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.Images) },
	"maxBuilds":        func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!int", &c.MaxBuilds) },
	"deadline":         decodeDeadline,
	"allowSourceHosts": func(c *Config, v *yaml.Node) error { return decodeStrings(v, &c.AllowSourceHosts) },
	"logLevel":         func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.LogLevel) },
	"logFormat":        func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.LogFormat) },
	"storeMaxBytes":    func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!int", &c.StoreMaxBytes) },
	"http":             func(c *Config, v *yaml.Node) error { c.HTTP = new(string); return decodeScalar(v, "!!str", c.HTTP) },
	"logUrl":           func(c *Config, v *yaml.Node) error { return decodeScalar(v, "!!str", &c.LogURL) },
}

func decodeScalar(v *yaml.Node, tag string, out any) error {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != tag {
		return fmt.Errorf("is %s, want %s", describeYAML(v), strings.TrimPrefix(tag, "!!"))
	}
	return v.Decode(out)
}

func decodeStrings(v *yaml.Node, out *[]string) error {
	if v.Kind != yaml.SequenceNode {
		return fmt.Errorf("is %s, want a list of strings", describeYAML(v))
	}
	for i, e := range v.Content {
		var s string
		if err := decodeScalar(e, "!!str", &s); err != nil {
			return fmt.Errorf("item %d %w", i+1, err)
		}
		*out = append(*out, s)
	}
	return nil
}

func decodeDeadline(c *Config, v *yaml.Node) error {
	var s string
	if err := decodeScalar(v, "!!str", &s); err != nil {
		return fmt.Errorf("%w (a duration such as 10m or 1h30m)", err)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration (such as 10m or 1h30m)", s)
	}
	c.Deadline = d
	return nil
}

func describeYAML(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strings.TrimPrefix(v.ShortTag(), "!!") + " " + fmt.Sprintf("%q", truncateString(v.Value, 40))
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ParseConfig parses a configuration file's bytes; file names it in
// errors (*ConfigError) and relative paths are taken relative to its
// folder.
func ParseConfig(file string, data []byte) (*Config, error) {
	cerr := func(line int, field string, err error) error {
		return &ConfigError{File: file, Line: line, Field: field, Err: err}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, cerr(0, "", errors.New("empty (want a node configuration: a YAML mapping of fields such as data: and policy:)"))
		}
		return nil, cerr(0, "", fmt.Errorf("not valid YAML: %w", err))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, cerr(more.Line, "", errors.New("more than one YAML document (a configuration file holds one)"))
	}
	m := &doc
	if m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = m.Content[0]
	}
	if m.Kind != yaml.MappingNode {
		return nil, cerr(m.Line, "", fmt.Errorf("is %s, want a mapping of fields such as data and policy", describeYAML(m)))
	}
	seen := map[string]int{}
	c := &Config{file: file, lines: seen}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return nil, cerr(k.Line, "", fmt.Errorf("a key is %s, want a field name", describeYAML(k)))
		}
		decode, ok := configFields[k.Value]
		if !ok {
			return nil, cerr(k.Line, k.Value, fmt.Errorf("unknown field (the fields are %s)", strings.Join(configFieldNames(), ", ")))
		}
		if line, dup := seen[k.Value]; dup {
			return nil, cerr(k.Line, k.Value, fmt.Errorf("given twice (first on line %d)", line))
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			return nil, cerr(v.Line, k.Value, errors.New("is an alias: write the value itself"))
		}
		if err := decode(c, v); err != nil {
			return nil, cerr(v.Line, k.Value, err)
		}
	}
	if line, ok := seen["version"]; ok && c.Version != ConfigVersion {
		return nil, cerr(line, "version", fmt.Errorf("%d is not supported (this build reads version %d)", c.Version, ConfigVersion))
	}
	if line, ok := seen["maxBuilds"]; ok && c.MaxBuilds <= 0 {
		return nil, cerr(line, "maxBuilds", fmt.Errorf("%d: want at least 1", c.MaxBuilds))
	}
	if line, ok := seen["storeMaxBytes"]; ok && c.StoreMaxBytes <= 0 {
		return nil, cerr(line, "storeMaxBytes", fmt.Errorf("%d: want a positive number of bytes", c.StoreMaxBytes))
	}
	if line, ok := seen["logUrl"]; ok {
		if u, err := url.Parse(c.LogURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, cerr(line, "logUrl", fmt.Errorf("%q: want an http:// or https:// URL of a tlog-tiles log", truncateString(c.LogURL, 80)))
		}
	}
	if line, ok := seen["logLevel"]; ok {
		if _, err := ParseLogLevel(c.LogLevel); err != nil {
			return nil, cerr(line, "logLevel", err)
		}
	}
	if line, ok := seen["logFormat"]; ok && c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, cerr(line, "logFormat", fmt.Errorf("%q: want text or json", truncateString(c.LogFormat, 40)))
	}
	for _, f := range []struct {
		name string
		p    *string
	}{{"data", &c.Data}, {"policy", &c.Policy}, {"firstPolicy", &c.FirstPolicy}, {"images", &c.Images}} {
		if line, ok := seen[f.name]; ok {
			if *f.p == "" {
				return nil, cerr(line, f.name, errors.New("is empty: give a path, or leave the field out"))
			}
			if !filepath.IsAbs(*f.p) {
				*f.p = filepath.Join(filepath.Dir(file), *f.p)
			}
		}
	}
	return c, nil
}

func configFieldNames() []string {
	var names []string
	for n := range configFields {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LoadConfig reads and parses the configuration file at path (a regular
// file of at most [MaxConfigSize] bytes).
func LoadConfig(ctx context.Context, path string) (*Config, error) {
	b, err := fileread.ReadFile(ctx, path, "configuration", MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseLogLevel parses debug, info, warn or error.
func ParseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q: want debug, info, warn or error", truncateString(s, 40))
}
