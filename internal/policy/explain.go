package policy

import (
	"fmt"
	"strings"
)

// Explanation is a host's effective limits with, for each limit, what set it.
type Explanation struct {
	HostPolicy HostPolicy
	// Source names what set each field (keys: maxConcurrency, minDelay, maxCrawlDelay, robots,
	// waitTimeout, tls, groupBy): "rule at line N (patterns)" for a rule, "defaults" for the document's
	// defaults, "built-in default" for a default the document leaves unset (or sets to the built-in
	// value: the two cannot be told apart once compiled).
	Source map[string]string
	// Rules are the rules that match the host at the winning specificity (more than one when equally
	// specific rules combine field by field, the stricter value winning).
	Rules []string
}

// Explain is For with the reasons: the same limits, and the rule (or default) behind each.
func (p *Policy) Explain(host, port string) Explanation {
	best := -1
	var winners []Rule
	for _, r := range p.rules {
		for _, pt := range r.patterns {
			if !pt.matches(host, port) {
				continue
			}
			switch s := pt.specificity(); {
			case s > best:
				best, winners = s, []Rule{r}
			case s == best:
				winners = append(winners, r)
			}
		}
	}
	e := Explanation{HostPolicy: p.For(host, port), Source: map[string]string{}}
	def := func(field string, same bool) {
		if same {
			e.Source[field] = "built-in default"
		} else {
			e.Source[field] = "defaults"
		}
	}
	d, b := p.defaults, BuiltinDefaults
	def("maxConcurrency", d.MaxConcurrency == b.MaxConcurrency)
	def("minDelay", d.MinDelay == b.MinDelay)
	def("maxCrawlDelay", d.MaxCrawlDelay == b.MaxCrawlDelay)
	def("robots", d.EnforceRobots == b.EnforceRobots)
	def("waitTimeout", d.WaitTimeout == b.WaitTimeout)
	def("tls", d.Tunnel == b.Tunnel)
	def("groupBy", d.GroupBy == b.GroupBy)
	for _, r := range winners {
		e.Rules = append(e.Rules, describe(r))
		l := apply(p.defaults, r.Fields)
		// A rule that sets a field to the value in force is (one of) its source; among equally
		// specific rules the stricter value is the one in force.
		set := func(field string, isSet, same bool) {
			if isSet && same {
				if prev, ok := e.Source[field]; ok && strings.HasPrefix(prev, "rule") {
					e.Source[field] = prev + "; " + describe(r)
				} else {
					e.Source[field] = describe(r)
				}
			}
		}
		f, in := r.Fields, e.HostPolicy
		set("maxConcurrency", f.MaxConcurrency != nil, l.MaxConcurrency == in.MaxConcurrency)
		set("minDelay", f.MinDelay != nil, l.MinDelay == in.MinDelay)
		set("maxCrawlDelay", f.MaxCrawlDelay != nil, l.MaxCrawlDelay == in.MaxCrawlDelay)
		set("robots", f.Robots != nil, l.EnforceRobots == in.EnforceRobots)
		set("waitTimeout", f.WaitTimeout != nil, l.WaitTimeout == in.WaitTimeout)
		set("tls", f.TLS != nil, l.Tunnel == in.Tunnel)
		set("groupBy", f.GroupBy != nil, l.GroupBy == in.GroupBy)
	}
	return e
}

// String is the explanation in one line per field.
func (e Explanation) String() string {
	l := e.HostPolicy
	robots, tls := "enforce", "intercept"
	if !l.EnforceRobots {
		robots = "ignore"
	}
	if l.Tunnel {
		tls = "tunnel"
	}
	var b strings.Builder
	for _, f := range []struct{ k, v string }{{"maxConcurrency", fmt.Sprint(l.MaxConcurrency)}, {"minDelay", l.MinDelay.String()},
		{"maxCrawlDelay", l.MaxCrawlDelay.String()}, {"robots", robots}, {"waitTimeout", l.WaitTimeout.String()}, {"tls", tls},
		{"groupBy", l.GroupBy.String()}} {
		fmt.Fprintf(&b, "%s: %s (%s)\n", f.k, f.v, e.Source[f.k])
	}
	return b.String()
}
