//go:build faulttest

package faulttest

import (
	"context"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/google/uuid"
)

// requestID is a fresh client request_id for one logical write, or "" when
// FAULTTEST_RETRY_WITHOUT_REQUEST_ID is set: then the client_retry scenario retries
// blindly, to show the duplicates that the field prevents.
func requestID() string {
	if os.Getenv("FAULTTEST_RETRY_WITHOUT_REQUEST_ID") != "" {
		return ""
	}
	return uuid.NewString()
}

// ambiguous reports whether an answer leaves the outcome of a write unknown, so that a
// client must retry it with the same request_id: the broker's confirm did not come
// (Unavailable, DeadlineExceeded) or the call itself timed out.
func ambiguous(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// retryAmbiguous makes one logical write: it calls again, with the very same request
// (and so the same request_id), as long as the answer is ambiguous and budget allows,
// backing off from 200 ms to 2 s. Each attempt gets attemptTimeout. It returns how many
// attempts it made and the last answer.
func retryAmbiguous(budget, attemptTimeout time.Duration, call func(context.Context) error) (int, error) {
	deadline := time.Now().Add(budget)
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		err := call(ctx)
		cancel()
		if err == nil || !ambiguous(err) || time.Now().Add(backoff).After(deadline) {
			return attempt, err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}
