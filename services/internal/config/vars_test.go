package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/config"
)

// TestParseErrorsNameTheVariable: a value that does not parse is reported by its
// variable's name and what it should look like, never by the Go field env knows it as
// ("Every" is the field of four variables).
func TestParseErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	_, err := config.LoadFrom(map[string]string{
		"ATES_AUTH_TOKEN_TTL":           "a day",
		"ATES_AUTH_FAILED_LOGINS_EVERY": "often",
		"ATES_TASKHANDLER_PREFETCH":     "many",
		"ATES_LOG_LEVEL":                "loud",
		"ATES_PPROF":                    "maybe",
	})
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`ATES_AUTH_TOKEN_TTL="a day" is not a duration`,
		`ATES_AUTH_FAILED_LOGINS_EVERY="often" is not a duration`,
		`ATES_TASKHANDLER_PREFETCH="many" is not a whole number`,
		`ATES_LOG_LEVEL="loud" is not a log level (debug, info, warn or error)`,
		`ATES_PPROF="maybe" is not true or false`,
	} {
		require.Contains(t, msg, want)
	}
	for _, field := range []string{"TokenTTL", `"Every"`, "TaskhandlerPrefetch", "LogLevel", "field"} {
		require.NotContains(t, msg, field)
	}
}

// TestUnknownVars: ATES_* variables that no setting reads are found, with the setting a
// typo most likely meant; known settings, prefixed ones included, compose.yaml's
// passwords and other variables are not.
func TestUnknownVars(t *testing.T) {
	t.Parallel()
	got := config.UnknownVars([]string{
		"ATES_AUTH_TOKEN_TL=1h",
		"ATES_TYPO=1",
		"ATES_TASKS_HTTP_ADDR=:9000",
		"ATES_AUTH_FAILED_LOGINS_PER_ADDR_BURST=5",
		"ATES_DATABASE_URL=postgres://x",
		"ATES_DATABSE_URL=postgres://x",
		"HOME=/root",
		"ATES_DB_PASSWORD=compose-fills-ATES_DATABASE_URL-in",
		"ATES_ANALYTICS_GRPC_ADR=:1",
	})
	require.Equal(t, []config.Unknown{
		{Name: "ATES_ANALYTICS_GRPC_ADR", DidYouMean: "ATES_ANALYTICS_GRPC_ADDR"},
		{Name: "ATES_AUTH_TOKEN_TL", DidYouMean: "ATES_AUTH_TOKEN_TTL"},
		{Name: "ATES_DATABSE_URL", DidYouMean: "ATES_DATABASE_URL"},
		{Name: "ATES_TYPO"},
	}, got)
	names := config.Names()
	require.Contains(t, names, "ATES_MAILSENDER_HTTP_ADDR")
	require.Contains(t, names, "ATES_TASKS_CREATE_PER_USER_EVERY")
	require.Contains(t, names, "ATES_SMTP_PASSWORD")
	require.NotContains(t, names, "ATES_TASKS_CREATE_PER_USER_")
}
