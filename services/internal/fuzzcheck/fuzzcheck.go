// Package fuzzcheck states, for fuzz tests, what the proto field rules promise about a
// message a decoder accepted: the handlers behind the decoder count on it.
package fuzzcheck

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// UUIDs fails t unless every id is a UUID in the 36-character form protovalidate's uuid
// rule accepts (either case), which uuid.Parse reads back as the same id.
func UUIDs(t testing.TB, ids ...string) {
	t.Helper()
	for _, s := range ids {
		id, err := uuid.Parse(s)
		if err != nil || id.String() != strings.ToLower(s) {
			t.Fatalf("accepted id %q, not a UUID in its canonical form (%v)", s, err)
		}
	}
}

// OptionalUUID is UUIDs for a field where empty means "not given".
func OptionalUUID(t testing.TB, id string) {
	t.Helper()
	if id != "" {
		UUIDs(t, id)
	}
}

// Printable fails t unless s is what rules.v1.printable accepts: valid UTF-8 of 1 to
// maxRunes characters (no upper bound if maxRunes < 0) with something visible and no
// control character.
func Printable(t testing.TB, field, s string, maxRunes int) {
	t.Helper()
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s):
		t.Fatalf("accepted %s %q: not UTF-8", field, s)
	case n == 0 || maxRunes >= 0 && n > maxRunes:
		t.Fatalf("accepted %s of %d characters", field, n)
	case strings.ContainsFunc(s, unicode.IsControl):
		t.Fatalf("accepted %s %q with a control character", field, s)
	case !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsSpace(r) && !unicode.Is(unicode.Z, r) }):
		t.Fatalf("accepted blank %s %q", field, s)
	}
}

// Email fails t unless s looks like the address protovalidate's email rule accepts: a
// local part and a domain around one "@", nothing blank or control, at most maxLen bytes
// (no bound if maxLen < 0). It is there to go into a mail header.
func Email(t testing.TB, s string, maxLen int) {
	t.Helper()
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) || maxLen >= 0 && len(s) > maxLen {
		t.Fatalf("accepted email %q", s)
	}
}

// Runes fails t unless s is valid UTF-8 of min to max characters.
func Runes(t testing.TB, field, s string, min, max int) {
	t.Helper()
	if n := utf8.RuneCountInString(s); !utf8.ValidString(s) || n < min || n > max {
		t.Fatalf("accepted %s %q of %d characters, want %d to %d", field, s, n, min, max)
	}
}
