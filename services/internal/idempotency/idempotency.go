// Package idempotency derives the ids a write call creates from the client's request id,
// so that a retry of the call creates the very same ids: the same event, which consumers
// apply once, and the same task or user, which the first call made or will make.
package idempotency

import (
	"bytes"
	"crypto/sha256"
	"slices"

	"github.com/google/uuid"
)

// Namespace is the UUIDv5 namespace of every derived id. Never change it: a retry that
// spans the change would act twice.
var Namespace = uuid.MustParse("2c276975-ac66-4ab0-948d-707b044d4d4f")

// ID derives the id of what ("event", "task", "user", "operation") that the call method
// (its full gRPC name) makes for caller under the client's requestID: the UUIDv5 under
// Namespace of all four. Different callers, calls or request ids never share ids, so a
// request id only ever replays the caller's own call.
func ID(caller uuid.UUID, method string, requestID uuid.UUID, what string) uuid.UUID {
	name := make([]byte, 0, 2*16+len(method)+1+len(what))
	name = append(name, caller[:]...)
	name = append(name, requestID[:]...)
	// No gRPC method name contains a NUL, so method and what cannot blur into each other.
	name = append(name, method...)
	name = append(name, 0)
	name = append(name, what...)
	return uuid.NewSHA1(Namespace, name)
}

// SetID derives the id of a part of parent that covers exactly members (e.g. one batch
// of a reassign-all operation): the UUIDv5 under parent of the SHA-256 of the sorted
// members. The same set gets the same id whatever its order; any other set another.
func SetID(parent uuid.UUID, members []uuid.UUID) uuid.UUID {
	sorted := slices.SortedFunc(slices.Values(members), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	for _, m := range sorted {
		h.Write(m[:])
	}
	return uuid.NewSHA1(parent, h.Sum(nil))
}
