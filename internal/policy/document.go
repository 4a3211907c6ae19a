package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("policy: invalid")

// Duration is a time.Duration written as "250ms", "1s", "2m".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string and names the line when it is not one.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a non-negative duration (e.g. 250ms, 1s, 2m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Parse reads it.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Fields are the tunable limits. In defaults every field must be set (or takes the built-in value);
// in a rule, unset fields inherit from the defaults.
type Fields struct {
	MaxConcurrency *int      `yaml:"maxConcurrency,omitempty"`
	MinDelay       *Duration `yaml:"minDelay,omitempty"`
	MaxCrawlDelay  *Duration `yaml:"maxCrawlDelay,omitempty"`
	Robots         *string   `yaml:"robots,omitempty"` // enforce | ignore
	WaitTimeout    *Duration `yaml:"waitTimeout,omitempty"`
	TLS            *string   `yaml:"tls,omitempty"`     // intercept | tunnel
	GroupBy        *string   `yaml:"groupBy,omitempty"` // host | domain | ip: what shares one budget (see Group)

	lines map[string]int // line of each key, for messages
}

// at prefixes a message about key with its line, when known.
func (f Fields) at(key string) string {
	if n := f.lines[key]; n > 0 {
		return fmt.Sprintf("line %d: %s", n, key)
	}
	return key
}

// Rule applies Fields to the hosts its patterns match.
type Rule struct {
	Hosts  []string `yaml:"hosts"`
	Fields `yaml:",inline"`

	line     int
	patterns []pattern
}

// Document is the policy file.
type Document struct {
	Defaults Fields `yaml:"defaults"`
	Rules    []Rule `yaml:"rules,omitempty"`
}

// Parse reads and validates a policy document. Unknown keys and bad values are errors naming their line.
func Parse(data []byte) (*Policy, error) {
	doc, err := ParseDocument(data)
	if err != nil {
		return nil, err
	}
	return compile(doc)
}

// ParseDocument reads a policy document without compiling it (Compile validates it).
func ParseDocument(data []byte) (Document, error) {
	var doc Document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // empty: all defaults
		return Document{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		recordLines(&root, &doc)
	}
	return doc, nil
}

// Compile validates doc and makes it ready for lookups.
func (doc Document) Compile() (*Policy, error) { return compile(doc) }

// Marshal writes doc in the form Parse reads.
func (doc Document) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// recordLines notes the line of each rule and of each field, for messages about their values.
func recordLines(root *yaml.Node, doc *Document) {
	if len(root.Content) == 0 {
		return
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case "defaults":
			doc.Defaults.lines = keyLines(m.Content[i+1])
		case "rules":
			for j, r := range m.Content[i+1].Content {
				if j < len(doc.Rules) {
					doc.Rules[j].line = r.Line
					doc.Rules[j].lines = keyLines(r)
				}
			}
		}
	}
}

func keyLines(m *yaml.Node) map[string]int {
	out := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		out[m.Content[i].Value] = m.Content[i].Line
	}
	return out
}

func validateFields(f Fields, where string) error {
	if f.MaxConcurrency != nil && (*f.MaxConcurrency < 1 || *f.MaxConcurrency > 10000) {
		return fmt.Errorf("%w: %s: %s %d must be between 1 and 10000", ErrInvalid, where, f.at("maxConcurrency"), *f.MaxConcurrency)
	}
	if f.Robots != nil && *f.Robots != "enforce" && *f.Robots != "ignore" {
		return fmt.Errorf("%w: %s: %s %q must be enforce or ignore", ErrInvalid, where, f.at("robots"), *f.Robots)
	}
	if f.TLS != nil && *f.TLS != "intercept" && *f.TLS != "tunnel" {
		return fmt.Errorf("%w: %s: %s %q must be intercept or tunnel", ErrInvalid, where, f.at("tls"), *f.TLS)
	}
	if f.GroupBy != nil {
		if _, ok := groupNames[*f.GroupBy]; !ok {
			return fmt.Errorf("%w: %s: %s %q must be host, domain or ip", ErrInvalid, where, f.at("groupBy"), *f.GroupBy)
		}
	}
	if f.WaitTimeout != nil && *f.WaitTimeout == 0 {
		return fmt.Errorf("%w: %s: %s must be positive", ErrInvalid, where, f.at("waitTimeout"))
	}
	return nil
}

func describe(r Rule) string {
	return fmt.Sprintf("rule at line %d (%s)", r.line, strings.Join(r.Hosts, ", "))
}
