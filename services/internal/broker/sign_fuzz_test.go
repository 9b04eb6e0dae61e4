package broker

import (
	"bytes"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// FuzzVerify checks event signatures on any event and any signature header: an event
// verifies with the signature its producer made, and with no other: not after any change
// to its type, id or body (however the bytes shift between them), not under another key
// or another secret, and no header the fuzzer writes verifies unless it holds that very
// signature.
func FuzzVerify(f *testing.F) {
	f.Add("events.v1.TaskCreate", exampleID, []byte("body"), "events.v1.TaskCreate", exampleID, []byte("body"), "k1:AAAA")
	f.Add("ab", "c", []byte{}, "a", "bc", []byte{}, "")
	f.Add("a", "", []byte("bc"), "a", "b", []byte("c"), "k1:")
	f.Add("t", "i", []byte("b"), "t", "i", []byte("b\x00"), "k3:AAAA")
	producer, err := ParseKeyring("k1:0123456789abcdef0123, k2:fedcba9876543210fedc")
	if err != nil {
		f.Fatal(err)
	}
	oldKeyOnly, err := ParseKeyring("k2:fedcba9876543210fedc")
	if err != nil {
		f.Fatal(err)
	}
	otherSecret, err := ParseKeyring("k1:0123456789abcdef0124")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ, id string, body []byte, typ2, id2 string, body2 []byte, header string) {
		p := amqp.Publishing{Type: typ, MessageId: id, Body: body}
		producer.Sign(&p)
		signed := Delivery{Type: typ, EventID: id, Body: body, Headers: p.Headers}
		if err := producer.verify(signed); err != nil {
			t.Fatalf("an event does not verify with its own signature: %v", err)
		}
		for name, k := range map[string]*Keyring{"an old key only": oldKeyOnly, "another secret": otherSecret} {
			if k.verify(signed) == nil {
				t.Fatalf("an event signed with k1 verifies with %s", name)
			}
		}
		other := Delivery{Type: typ2, EventID: id2, Body: body2, Headers: p.Headers}
		same := typ2 == typ && id2 == id && bytes.Equal(body2, body)
		if err := producer.verify(other); (err == nil) != same {
			t.Fatalf("the signature of (%q, %q, %q) on (%q, %q, %q): %v", typ, id, body, typ2, id2, body2, err)
		}
		forged := Delivery{Type: typ, EventID: id, Body: body, Headers: amqp.Table{HeaderSignature: header}}
		if producer.verify(forged) == nil && !sameSignature(t, header, p.Headers[HeaderSignature].(string), producer, signed) {
			t.Fatalf("header %q verifies (%q, %q, %q)", header, typ, id, body)
		}
	})
}

// sameSignature reports whether header is, but for the newlines the base64 decoder skips,
// a signature Sign makes of d with one of k's keys (made is the first key's).
func sameSignature(t *testing.T, header, made string, k *Keyring, d Delivery) bool {
	t.Helper()
	header = strings.NewReplacer("\r", "", "\n", "").Replace(header)
	if header == made {
		return true
	}
	for _, key := range k.keys[1:] {
		p := amqp.Publishing{Type: d.Type, MessageId: d.EventID, Body: d.Body}
		(&Keyring{keys: []signingKey{key}}).Sign(&p)
		if header == p.Headers[HeaderSignature] {
			return true
		}
	}
	return false
}
