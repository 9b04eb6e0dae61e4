package broker

import (
	"context"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
)

// CutConnection closes the socket under the current connection, as a network
// failure or a broker restart would, and reports whether there was one.
func (c *Conn) CutConnection() bool {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return false
	}
	_ = s.netConn.Close()
	return true
}

// Connects returns how many times c has connected (1 after Dial).
func (c *Conn) Connects() uint64 { return c.connects.Load() }

// RawRoute routes key to h without decoding, so the middleware's settling can be tested
// with any payload.
func RawRoute(key string, h func(context.Context, Delivery) error) Route {
	return Route{key: key, decode: func(d Delivery, _ uuid.UUID, _ protovalidate.Validator) (func(context.Context) error, error) {
		return func(ctx context.Context) error { return h(ctx, d) }, nil
	}}
}
