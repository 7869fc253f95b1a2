package retention

import (
	"errors"
	"fmt"
	"time"

	"github.com/gobwas/glob"
	"github.com/nora-registry/nora/storage"
)

// Config is the [retention] section of nora.toml.
type Config struct {
	// Protected tag patterns: a tag matching one is never deleted.
	Protected []string `toml:"protected"`
	Rules     []Rule   `toml:"rules"`
}

// Rule is one [[retention.rules]] entry.
type Rule struct {
	// Repositories are globs over repository names; at least one.
	Repositories []string `toml:"repositories"`
	// Tags are globs over tag names; empty means every tag.
	Tags []string `toml:"tags"`
	// KeepLast keeps the most recently pushed tags of each repository
	// that the rule applies to; 0 sets no such condition.
	KeepLast int `toml:"keep_last"`
	// OlderThan deletes only tags pushed longer ago, e.g. "7d", "12h".
	OlderThan string `toml:"older_than"`
	// PulledWithin keeps tags pulled more recently than this.
	PulledWithin string `toml:"pulled_within"`
	// Untagged makes the rule apply to untagged manifests too.
	Untagged bool `toml:"untagged"`
}

// globs compiles patterns with `/` as separator: `*` stays within a
// segment, `**` crosses them.
var globs = glob.Compiler{Separators: []rune{'/'}, Globstar: true}

// Rules are compiled rules, ready for Plan.
type Rules struct {
	protected []*glob.Pattern
	rules     []compiled
}

type compiled struct {
	Rule
	repos, tags               []*glob.Pattern
	olderThan, pulledWithin   time.Duration
	hasOlderThan, hasPulledIn bool
}

// Validate reports the invalid values, naming their keys: the first of
// each rule.
func (c Config) Validate() error {
	_, err := Compile(c)
	return err
}

// Compile checks c and compiles its globs and durations. Its error joins
// one error per invalid rule.
func Compile(c Config) (*Rules, error) {
	r := &Rules{}
	var errs []error
	var err error
	if r.protected, err = compileAll("retention.protected", c.Protected); err != nil {
		errs = append(errs, err)
	}
	for i, rule := range c.Rules {
		cr, err := compileRule(fmt.Sprintf("retention.rules[%d]", i), rule)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.rules = append(r.rules, cr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func compileRule(key string, rule Rule) (compiled, error) {
	cr := compiled{Rule: rule}
	var err error
	if len(rule.Repositories) == 0 {
		return cr, fmt.Errorf("%s.repositories: must name at least one glob, e.g. [\"**\"]", key)
	}
	if cr.repos, err = compileAll(key+".repositories", rule.Repositories); err != nil {
		return cr, err
	}
	if cr.tags, err = compileAll(key+".tags", rule.Tags); err != nil {
		return cr, err
	}
	if rule.KeepLast < 0 {
		return cr, fmt.Errorf("%s.keep_last: must not be negative, got %d", key, rule.KeepLast)
	}
	if rule.OlderThan != "" {
		if cr.olderThan, err = storage.ParseDuration(rule.OlderThan); err != nil {
			return cr, fmt.Errorf("%s.older_than: %v", key, err)
		}
		cr.hasOlderThan = true
	}
	if rule.PulledWithin != "" {
		if cr.pulledWithin, err = storage.ParseDuration(rule.PulledWithin); err != nil {
			return cr, fmt.Errorf("%s.pulled_within: %v", key, err)
		}
		cr.hasPulledIn = true
	}
	if rule.KeepLast == 0 && !cr.hasOlderThan && !cr.hasPulledIn {
		return cr, errors.New(key + ": set at least one of keep_last, older_than, pulled_within")
	}
	return cr, nil
}

func compileAll(key string, patterns []string) ([]*glob.Pattern, error) {
	var out []*glob.Pattern
	for _, p := range patterns {
		g, err := globs.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid glob %q: %v", key, p, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func matchAny(ps []*glob.Pattern, s string) bool {
	for _, p := range ps {
		if p.Match(s) {
			return true
		}
	}
	return false
}
