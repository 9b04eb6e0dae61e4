package broker

import "os"

// TestURL returns the broker URL tests should use: $TEST_AMQP_URL, or the
// local default "amqp://guest:guest@127.0.0.1:5672/". It is in a non-test
// file so that other packages' tests can use it.
func TestURL() string {
	if u := os.Getenv("TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}
