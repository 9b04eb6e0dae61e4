// Package eventstest gives a test the per-service broker users of production, made with
// the same permission table (events.Grants) for the test's private exchange and queues.
package eventstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
)

// ServiceUsers creates one broker user per service with a random name and password,
// granted what events.Grants gives that service on names, declares names' topology as
// `ates broker setup` does (with the retry queues' TTL policy), and returns each service's AMQP URL. The users are deleted
// when the test ends. It needs rabbitmqctl (tests run on the broker's host).
func ServiceUsers(t testing.TB, names events.Names) map[string]string {
	t.Helper()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	logins := map[string]events.Login{}
	urls := map[string]string{}
	base, err := url.Parse(broker.TestURL())
	if err != nil {
		t.Fatalf("parse broker URL: %v", err)
	}
	for _, svc := range events.BrokerServices {
		l := events.Login{User: "test-" + svc + "-" + hex.EncodeToString(suffix), Password: rand.Text()}
		logins[svc] = l
		u := *base
		u.User = url.UserPassword(l.User, l.Password)
		urls[svc] = u.String()
	}
	grants, err := events.Grants(names, logins, events.Login{})
	if err != nil {
		t.Fatalf("grants: %v", err)
	}
	top := events.Topology(names)
	top.RetryTTL = broker.DefaultRetryMax // as ates broker setup with the default ATES_EVENT_RETRY_MAX
	defs, err := broker.Definitions(top, grants)
	if err != nil {
		t.Fatalf("definitions: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, l := range logins {
			if err := broker.DeleteUser(ctx, l.User); err != nil {
				t.Logf("delete broker user %s: %v", l.User, err)
			}
		}
		if err := broker.ClearPolicy(ctx, broker.RetryPolicy(names.Exchange)); err != nil {
			t.Logf("clear policy: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := broker.ImportDefinitions(ctx, defs); err != nil {
		t.Fatalf("create broker users: %v", err)
	}
	return urls
}
