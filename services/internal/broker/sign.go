package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// HeaderSignature carries an event's signature, "<key id>:<base64 HMAC-SHA-256>", over its
// type, event id and body (see Keyring). Its name has no "x-" prefix so that `ates dlq
// replay`, which drops the bookkeeping headers, keeps it.
const HeaderSignature = "ates-signature"

// MinKeyLen is the shortest signing secret a Keyring accepts, in bytes.
const MinKeyLen = 16

// ErrUnverified is wrapped by the error of an event whose signature is missing, made with
// a key the consumer does not know, or wrong: it did not come from the producer the
// consumer trusts, and is dead-lettered unread.
var ErrUnverified = errors.New("event not signed by its trusted producer")

// Keyring is one producer's signing keys. The producer signs every event with the first
// key; a consumer accepts an event signed with any of them. Rotating a key is therefore:
// add the new key second on every consumer and the producer, then move it first on the
// producer (it signs with it from then on), and drop the old key once the events it
// signed have been consumed (and the dead-letter queue no longer holds any).
type Keyring struct {
	keys []signingKey
}

type signingKey struct {
	id     string
	secret []byte
}

// ParseKeyring reads "id:secret" pairs separated by commas, the signing key first. Ids
// are unique, non-empty and without ':' or ','; secrets are at least MinKeyLen bytes.
func ParseKeyring(s string) (*Keyring, error) {
	k := &Keyring{}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(s, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(pair), ":")
		switch {
		case !ok || id == "":
			return nil, errors.New(`a key is "id:secret", keys separated by commas`)
		case seen[id]:
			return nil, fmt.Errorf("key id %q given twice", id)
		case len(secret) < MinKeyLen:
			return nil, fmt.Errorf("key %q: the secret must be at least %d bytes", id, MinKeyLen)
		}
		seen[id] = true
		k.keys = append(k.keys, signingKey{id: id, secret: []byte(secret)})
	}
	return k, nil
}

// SharesSecret reports whether k and o hold a key with the same secret (whatever its id):
// then whoever holds one keyring can sign as the other's producer.
func (k *Keyring) SharesSecret(o *Keyring) bool {
	for _, a := range k.keys {
		for _, b := range o.keys {
			if hmac.Equal(a.secret, b.secret) {
				return true
			}
		}
	}
	return false
}

// Sign sets p's signature header with the first key, over p's Type, MessageId and Body
// (Publish does it for a Conn with Config.Signer; this is for messages built by hand).
func (k *Keyring) Sign(p *amqp.Publishing) {
	key := k.keys[0]
	if p.Headers == nil {
		p.Headers = amqp.Table{}
	}
	p.Headers[HeaderSignature] = key.id + ":" + base64.StdEncoding.EncodeToString(mac(key.secret, p.Type, p.MessageId, p.Body))
}

// verify checks d's signature against the keyring; its error wraps ErrUnverified.
func (k *Keyring) verify(d Delivery) error {
	h, ok := d.Headers[HeaderSignature].(string)
	if !ok {
		return fmt.Errorf("%w: no %s header", ErrUnverified, HeaderSignature)
	}
	id, b64, _ := strings.Cut(h, ":")
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("%w: the signature is not base64", ErrUnverified)
	}
	for _, key := range k.keys {
		if key.id != id {
			continue
		}
		if !hmac.Equal(sig, mac(key.secret, d.Type, d.EventID, d.Body)) {
			return fmt.Errorf("%w: the signature with key %q does not match", ErrUnverified, id)
		}
		return nil
	}
	return fmt.Errorf("%w: signed with key %q, which the consumer does not know", ErrUnverified, id)
}

// mac is the HMAC-SHA-256 of the event's type, id and body, each prefixed by its length
// so that no two different events sign the same bytes.
func mac(secret []byte, typ, id string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, part := range [][]byte{[]byte(typ), []byte(id), body} {
		_ = binary.Write(m, binary.BigEndian, uint32(len(part))) //nolint:gosec // G115: an AMQP message body is far below 4 GiB
		m.Write(part)
	}
	return m.Sum(nil)
}
