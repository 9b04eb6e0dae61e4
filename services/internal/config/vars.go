package config

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caarlos0/env/v11"
)

// setting is one environment variable Config reads, with the Go type it parses into.
type setting struct {
	name string
	typ  reflect.Type
}

// settings are every variable Config reads, in name order, found by walking its env and
// envPrefix tags the way env does.
var settings = sync.OnceValue(func() []setting {
	var all []setting
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for f := range t.Fields() {
			tag, hasTag := f.Tag.Lookup("env")
			name, _, _ := strings.Cut(tag, ",")
			switch {
			case name == "-" || !f.IsExported():
			case hasTag && name != "":
				all = append(all, setting{prefix + name, f.Type})
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+f.Tag.Get("envPrefix"))
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	return all
})

// Names are the names of every variable Config reads, sorted.
func Names() []string {
	names := make([]string, 0, len(settings()))
	for _, s := range settings() {
		names = append(names, s.name)
	}
	return names
}

// parseErrors names, for a failed env.Parse, each variable whose value does not parse
// and what it should be: env's own errors name the Go field ("Every"), which the
// operator never sees and which several variables share.
func parseErrors(vars map[string]string, parseErr error) error {
	var errs []error
	for _, s := range settings() {
		value, ok := vars[s.name]
		if !ok {
			continue
		}
		// A struct of the one field, tagged with the variable's name, parsed alone.
		one := reflect.New(reflect.StructOf([]reflect.StructField{{
			Name: "V", Type: s.typ, Tag: reflect.StructTag(fmt.Sprintf(`env:%q`, s.name)),
		}}))
		if err := env.ParseWithOptions(one.Interface(), env.Options{Environment: map[string]string{s.name: value}}); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not %s", s.name, value, kindOf(s.typ)))
		}
	}
	if len(errs) == 0 {
		return parseErr // not a value that fails to parse on its own: say what env said
	}
	return errors.Join(errs...)
}

// kindOf says in words what a value of type t looks like.
func kindOf(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "a duration (such as 500ms, 30s, 5m or 1h)"
	case reflect.TypeFor[slog.Level]():
		return "a log level (debug, info, warn or error)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	}
	return "a valid " + t.String()
}

// Unknown is an ATES_* variable that no setting reads, and the setting it most likely
// meant ("" when none is close).
type Unknown struct {
	Name       string
	DidYouMean string
}

// composeVars are ATES_* variables that compose.yaml reads to fill settings in, not
// settings: exported for `docker compose up`, they are no typo.
var composeVars = map[string]bool{
	"ATES_DB_PASSWORD":                   true,
	"ATES_AMQP_PASSWORD":                 true,
	"ATES_TASKS_AMQP_PASSWORD":           true,
	"ATES_TASKHANDLER_AMQP_PASSWORD":     true,
	"ATES_DAILYACCOUNTING_AMQP_PASSWORD": true,
	"ATES_MAILSENDER_AMQP_PASSWORD":      true,
	"ATES_BIND":                          true,
	"ATES_GRAFANA_PASSWORD":              true,
}

// UnknownVars are the ATES_* variables of environ ("NAME=value" strings, as os.Environ
// gives them) that no setting reads, in name order: a misspelt setting would otherwise
// be ignored without a word, its default silently in force.
func UnknownVars(environ []string) []Unknown {
	known := map[string]bool{}
	for _, s := range settings() {
		known[s.name] = true
	}
	var unknown []Unknown
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "ATES_") || known[name] || composeVars[name] {
			continue
		}
		unknown = append(unknown, Unknown{Name: name, DidYouMean: closest(name)})
	}
	sort.Slice(unknown, func(i, j int) bool { return unknown[i].Name < unknown[j].Name })
	return unknown
}

// closest is the setting nearest to name in edits, if it is near enough to be a typo:
// at most a third of the name's length after ATES_, and at most 4.
func closest(name string) string {
	best, bestDist := "", min(4, len(strings.TrimPrefix(name, "ATES_"))/3)
	for _, s := range settings() {
		if d := editDistance(name, s.name); d <= bestDist && (best == "" || d < bestDist) {
			best, bestDist = s.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
