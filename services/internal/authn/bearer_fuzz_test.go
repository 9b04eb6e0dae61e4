package authn_test

import (
	"context"
	"strings"
	"testing"
	"unicode"

	"google.golang.org/grpc/metadata"

	"github.com/ates/ates/services/internal/authn"
)

// FuzzBearerToken checks the authorization parser on any one or two values: it accepts
// only "Bearer <token>" (any case, surrounding blanks trimmed), returns exactly the token,
// and the token is never empty and holds no blank or control character.
func FuzzBearerToken(f *testing.F) {
	for _, v := range []string{
		"Bearer abc", "bearer abc", "BEARER abc", "Bearer  abc  ", "Bearer", "Bearer ", "Bearer a b",
		"Bearer a\tb", "Bearer a\nb", "Bearer a\u00a0b", "Bearer a\x00b", "Basic dXNlcjpwYXNz",
		"Bearerabc", " Bearer abc", "Bearer\tabc", "Bearer 3q2-7w_x.y~z+/=", "",
	} {
		f.Add(v, "", false)
	}
	f.Add("Bearer abc", "Bearer abc", true)
	f.Fuzz(func(t *testing.T, value, second string, twice bool) {
		md := metadata.Pairs("authorization", value)
		if twice {
			md.Append("authorization", second)
		}
		token, err := authn.BearerToken(metadata.NewIncomingContext(context.Background(), md))
		if err != nil {
			if token != "" {
				t.Fatalf("BearerToken(%q) returned token %q with error %v", value, token, err)
			}
			return
		}
		if twice {
			t.Fatalf("BearerToken accepted two authorization values: %q, %q", value, second)
		}
		scheme, rest, ok := strings.Cut(value, " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			t.Fatalf("BearerToken(%q) accepted a scheme other than Bearer", value)
		}
		if token == "" || token != strings.TrimSpace(rest) {
			t.Fatalf("BearerToken(%q) = %q, not the value after the scheme", value, token)
		}
		if i := strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
			t.Fatalf("BearerToken(%q) = %q, which holds %q", value, token, []rune(token[i:])[0])
		}
	})
}
