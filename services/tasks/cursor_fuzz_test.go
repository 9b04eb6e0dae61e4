package tasks

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzParseCursor checks the list's page_token parser on any token, and on the token of
// any text (so that the fuzzer reaches the parsing behind the base64): it refuses what it
// cannot read, and the token of a cursor it accepts reads back as the same position.
func FuzzParseCursor(f *testing.F) {
	for _, raw := range []string{
		"2026-11-24T10:30:00.123456789Z|0b5b9c3e-8f7d-4a51-9a57-3c2d7e1f0a42",
		"2026-11-24T10:30:00Z|00000000-0000-0000-0000-000000000000",
		"2026-11-24T10:30:00+05:00|{0b5b9c3e-8f7d-4a51-9a57-3c2d7e1f0a42}",
		"2026-11-24T10:30:00-23:59|urn:uuid:0b5b9c3e-8f7d-4a51-9a57-3c2d7e1f0a42",
		"0001-01-01T00:00:00Z|0b5b9c3e8f7d4a519a573c2d7e1f0a42",
		"2026-11-24T10:30:00Z",
		"|",
		"",
		"not base64!",
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkCursorToken(t, raw)
		checkCursorToken(t, base64.RawURLEncoding.EncodeToString([]byte(raw)))
	})
}

func checkCursorToken(t *testing.T, token string) {
	t.Helper()
	c, err := parseCursor(token)
	switch {
	case token == "":
		if err != nil || c != nil {
			t.Fatalf("parseCursor(\"\") = %v, %v; want no cursor", c, err)
		}
		return
	case err != nil:
		if c != nil {
			t.Fatalf("parseCursor(%q) = %v with error %v", token, c, err)
		}
		return
	case c == nil:
		t.Fatalf("parseCursor(%q) = no cursor and no error", token)
	}
	again, err := parseCursor(c.token())
	if err != nil {
		t.Fatalf("the token of cursor %v (read from %q) does not parse: %v", c, token, err)
	}
	if !again.createdAt.Equal(c.createdAt) || again.id != c.id {
		t.Fatalf("cursor %v (read from %q) re-encodes as %v", c, token, again)
	}
	if again.token() != c.token() {
		t.Fatalf("cursor %v has two tokens: %q and %q", c, c.token(), again.token())
	}
}

// FuzzCursorToken checks that the token of any position a page can end at, a task's
// created_at (years 1 to 9999, which is what RFC 3339 can write) and id, reads back as it.
func FuzzCursorToken(f *testing.F) {
	f.Add(time.Date(2026, 11, 24, 10, 30, 0, 123456789, time.UTC).UnixNano(), []byte("0123456789abcdef"))
	f.Add(int64(0), []byte{})
	f.Add(int64(-1), []byte{0xff})
	f.Fuzz(func(t *testing.T, unixNanos int64, idBytes []byte) {
		var id uuid.UUID
		copy(id[:], idBytes)
		// Spread the nanoseconds over the years RFC 3339 covers: 1 to 9999.
		at := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(unixNanos)).
			AddDate(int(uint64(unixNanos)%9999), 0, 0)
		if at.Year() < 1 || at.Year() > 9999 {
			return
		}
		c := cursor{createdAt: at, id: id}
		got, err := parseCursor(c.token())
		if err != nil {
			t.Fatalf("the token of %v does not parse: %v", c, err)
		}
		if !got.createdAt.Equal(at) || got.id != id {
			t.Fatalf("cursor %v reads back as %v", c, got)
		}
	})
}
