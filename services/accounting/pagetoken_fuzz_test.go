package accounting

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ates/ates/services/internal/bizday"
)

// FuzzParsePageToken checks GetBalance's page_token parser on any token, and on the token
// of any text (so that the fuzzer reaches the parsing behind the base64): it accepts only
// a token of the asked user and day with a positive entry id, which re-encodes to a token
// of the same id.
func FuzzParsePageToken(f *testing.F) {
	user := uuid.MustParse("0b5b9c3e-8f7d-4a51-9a57-3c2d7e1f0a42")
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for _, raw := range []string{
		user.String() + "/2026-11-24/42",
		user.String() + "/2026-11-24/0",
		user.String() + "/2026-11-24/-1",
		user.String() + "/2026-11-24/+7",
		user.String() + "/2026-11-24/9223372036854775808",
		user.String() + "/2026-11-23/42",
		uuid.Nil.String() + "/2026-11-24/42",
		user.String() + "/2026-11-24/42/1",
		"",
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, token := range []string{raw, base64.RawURLEncoding.EncodeToString([]byte(raw))} {
			id, err := parsePageToken(token, user, day)
			switch {
			case token == "":
				if err != nil || id != 0 {
					t.Fatalf("parsePageToken(\"\") = %d, %v; want 0 (the first page)", id, err)
				}
			case err != nil:
				if id != 0 {
					t.Fatalf("parsePageToken(%q) = %d with error %v", token, id, err)
				}
			case id <= 0:
				t.Fatalf("parsePageToken(%q) = %d, not an entry id", token, id)
			default:
				again, err := parsePageToken(pageToken(user, day, id), user, day)
				if err != nil || again != id {
					t.Fatalf("entry %d (read from %q) re-encodes as %d, %v", id, token, again, err)
				}
				if _, err := parsePageToken(token, user, bizday.Next(day)); err == nil {
					t.Fatalf("the token %q of %s is accepted for the next day", token, bizday.Format(day))
				}
				if _, err := parsePageToken(token, uuid.Nil, day); err == nil {
					t.Fatalf("the token %q of user %s is accepted for another user", token, user)
				}
			}
		}
	})
}
