package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
)

// TestEachServiceHasItsOwnBrokerLogin: a service's own AMQP URL wins over the shared one,
// which every service without one keeps using; each producer signs with its own keyring,
// which its consumer trusts, and a bad keyring stops the start.
func TestEachServiceHasItsOwnBrokerLogin(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadFrom(map[string]string{
		"ATES_AMQP_URL":       "amqp://operator:op@broker:5672/",
		"ATES_TASKS_AMQP_URL": "amqp://ates-tasks:t@broker:5672/",
	})
	require.NoError(t, err)
	require.Equal(t, "amqp://ates-tasks:t@broker:5672/", cfg.AMQPURLOf(events.Tasks))
	require.Equal(t, "amqp://operator:op@broker:5672/", cfg.AMQPURLOf(events.Mailsender))

	require.Equal(t, cfg.EventKeysOf(events.Tasks), cfg.TrustedKeysOf(events.Taskhandler))
	require.Equal(t, cfg.EventKeysOf(events.Dailyaccounting), cfg.TrustedKeysOf(events.Mailsender))
	require.NotEqual(t, cfg.EventKeysOf(events.Tasks), cfg.EventKeysOf(events.Dailyaccounting), "each producer has its own key")
	require.Nil(t, cfg.EventKeysOf(events.Mailsender), "mailsender publishes no events")

	for _, bad := range []string{"no-colon", "k:short", ":no-id-but-a-long-secret"} {
		_, err := config.LoadFrom(map[string]string{"ATES_TASKS_EVENT_KEYS": bad})
		require.ErrorContains(t, err, "ATES_TASKS_EVENT_KEYS", "%q", bad)
	}

	// One secret in both keyrings (under any ids) would let mailsender, which holds
	// dailyaccounting's keys and may reach taskhandler's queue through the dead-letter
	// exchange, sign task events.
	shared := "shared-secret-0123456789abcdef"
	_, err = config.LoadFrom(map[string]string{
		"ATES_TASKS_EVENT_KEYS":           "t1:tasks-secret-0123456789abcdef,t0:" + shared,
		"ATES_DAILYACCOUNTING_EVENT_KEYS": "d1:" + shared,
	})
	require.ErrorContains(t, err, "share a secret")
}
