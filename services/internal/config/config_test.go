package config_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()

	t.Run("defaults follow docs/product.md", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(map[string]string{})
		require.NoError(t, err)
		require.Equal(t, "postgres://postgres@127.0.0.1:5432/ates?sslmode=disable", cfg.DatabaseURL)
		require.Equal(t, "amqp://guest:guest@127.0.0.1:5672/", cfg.AMQPURL)
		require.Equal(t, "127.0.0.1:1025", cfg.SMTP.Addr)
		require.Equal(t, "UTC", cfg.BusinessTZ.String())
		require.Equal(t, config.Listen{GRPC: ":50052", HTTP: ":8082"}, cfg.TasksListen)
		require.Equal(t, ":8087", cfg.MailsenderListen.HTTP)
		require.Equal(t, 16, cfg.MailsenderPrefetch)
		require.Equal(t, config.AMQP{
			Heartbeat:        2 * time.Second,
			HandshakeTimeout: 3 * time.Second,
			ConfirmTimeout:   2 * time.Second,
			ReconnectMax:     2 * time.Second,
		}, cfg.AMQP, "a hung or lost broker fails calls in seconds")
		require.Equal(t, config.Transport{
			MaxRequestBytes: 64 << 10,
			ReadTimeout:     10 * time.Second,
			WriteTimeout:    time.Minute,
			IdleTimeout:     2 * time.Minute,
		}, cfg.Transport, "bounded requests, plaintext unless certificates are given")
		require.Equal(t, config.Limits{
			FailedLoginsPerAddr: config.RateLimit{Burst: 10, Every: 30 * time.Second},
			FailedLogins:        config.RateLimit{Burst: 1000, Every: 100 * time.Millisecond},
			RegisterPerAddr:     config.RateLimit{Burst: 100, Every: 10 * time.Second},
			CreateTaskPerUser:   config.RateLimit{Burst: 20, Every: time.Second},
			CreateTaskRoles:     []string{"worker", "accountant"},
			ReassignPerMinute:   10,
		}, cfg.Limits, "docs/security-limits.md gives the reasons")
	})

	t.Run("the web dashboard calls the APIs on this machine's ports unless told otherwise", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(map[string]string{"ATES_TASKS_HTTP_ADDR": "127.0.0.1:9182"})
		require.NoError(t, err)
		require.Equal(t, config.Web{
			AuthURL:       "http://127.0.0.1:8081",
			TasksURL:      "http://127.0.0.1:9182",
			AccountingURL: "http://127.0.0.1:8083",
			AnalyticsURL:  "http://127.0.0.1:8084",
		}, cfg.Web)

		cfg, err = config.LoadFrom(map[string]string{"ATES_WEB_AUTH_URL": "https://auth.internal:8443"})
		require.NoError(t, err)
		require.Equal(t, "https://auth.internal:8443", cfg.Web.AuthURL)

		_, err = config.LoadFrom(map[string]string{"ATES_WEB_TASKS_URL": "tasks:8082"})
		require.ErrorContains(t, err, "ATES_WEB_TASKS_URL must be an http:// or https:// URL")
	})

	t.Run("token policy defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(map[string]string{})
		require.NoError(t, err)
		require.Equal(t, 10, cfg.Auth.MaxTokens)
		require.Equal(t, time.Hour, cfg.Auth.TokenSweepInterval)
		require.Equal(t, 5*time.Second, cfg.AuthClient.CacheTTL)
		require.Equal(t, 30*time.Second, config.MaxAuthCacheTTL)
		require.False(t, cfg.AllowDevKeys)
	})

	t.Run("each service refuses its public development keys unless the flag is set", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(map[string]string{})
		require.NoError(t, err)
		for service, want := range map[string][]string{
			"auth":            {"ATES_AUTH_HMAC_KEY"},
			"tasks":           {"ATES_TASKS_EVENT_KEYS"},
			"taskhandler":     {"ATES_TASKS_EVENT_KEYS"},
			"dailyaccounting": {"ATES_DAILYACCOUNTING_EVENT_KEYS"},
			"mailsender":      {"ATES_DAILYACCOUNTING_EVENT_KEYS"},
			"accounting":      nil,
			"analytics":       nil,
		} {
			require.Equal(t, want, cfg.DevKeysOf(service), service)
			err := cfg.CheckKeys(service)
			if want == nil {
				require.NoError(t, err, service)
				continue
			}
			require.ErrorIs(t, err, config.ErrDevKey, service)
			require.ErrorContains(t, err, want[0], service)
			require.ErrorContains(t, err, "openssl rand -base64 32", service)
		}

		cfg, err = config.LoadFrom(map[string]string{"ATES_ALLOW_DEV_KEYS": "true"})
		require.NoError(t, err)
		require.NoError(t, cfg.CheckKeys("auth"))
		require.NoError(t, cfg.CheckKeys("tasks"))

		cfg, err = config.LoadFrom(map[string]string{
			"ATES_AUTH_HMAC_KEY":    "kTq0dN0pQ7m1v3b9Yx2Zr8Wc5Hs4Ju6A",
			"ATES_TASKS_EVENT_KEYS": "k2:Yx2Zr8Wc5Hs4Ju6AkTq0dN0pQ7m1v3b9",
		})
		require.NoError(t, err)
		require.NoError(t, cfg.CheckKeys("auth"), "a real key needs no flag")
		require.NoError(t, cfg.CheckKeys("taskhandler"))

		cfg, err = config.LoadFrom(map[string]string{
			"ATES_TASKS_EVENT_KEYS": "k2:Yx2Zr8Wc5Hs4Ju6AkTq0dN0pQ7m1v3b9," + config.DevTasksEventKeys,
		})
		require.NoError(t, err)
		require.ErrorIs(t, cfg.CheckKeys("taskhandler"), config.ErrDevKey,
			"a consumer that still verifies with the public key would accept events anyone can sign")
	})

	t.Run("abuse limits are read from their variables", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(map[string]string{
			"ATES_TRUSTED_PROXIES":                   "10.0.0.0/8, 2001:db8::/32, 192.0.2.7",
			"ATES_AUTH_FAILED_LOGINS_PER_ADDR_BURST": "3",
			"ATES_AUTH_FAILED_LOGINS_PER_ADDR_EVERY": "1m",
			"ATES_AUTH_FAILED_LOGINS_BURST":          "0",
			"ATES_TASKS_CREATE_LIMITED_ROLES":        "worker",
			"ATES_TASKS_REASSIGN_PER_MINUTE":         "0",
		})
		require.NoError(t, err)
		require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.7/32")}, cfg.Limits.TrustedProxies)
		require.Equal(t, config.RateLimit{Burst: 3, Every: time.Minute}, cfg.Limits.FailedLoginsPerAddr)
		require.Equal(t, config.RateLimit{Burst: 0, Every: 100 * time.Millisecond}, cfg.Limits.FailedLogins, "0: off")
		require.Equal(t, []string{"worker"}, cfg.Limits.CreateTaskRoles)
		require.Zero(t, cfg.Limits.ReassignPerMinute)
	})

	t.Run("CORS origins are read from their variable", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(map[string]string{})
		require.NoError(t, err)
		require.Empty(t, cfg.Transport.CORSOrigins, "no CORS unless asked for")
		cfg, err = config.LoadFrom(map[string]string{"ATES_CORS_ORIGINS": "https://app.example.com, http://localhost:3000"})
		require.NoError(t, err)
		require.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, cfg.Transport.CORSOrigins)
	})

	t.Run("variables override defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(map[string]string{
			"ATES_BUSINESS_TZ":     "Europe/Berlin",
			"ATES_AUTH_GRPC_ADDR":  "127.0.0.1:6000",
			"ATES_AUTH_CACHE_TTL":  "0s",
			"ATES_AUTH_TOKEN_TTL":  "1h",
			"ATES_AUTH_HMAC_KEY":   "0123456789abcdef0123",
			"ATES_LOG_FORMAT":      "json",
			"ATES_TASKS_HTTP_ADDR": ":9999",
		})
		require.NoError(t, err)
		require.Equal(t, "Europe/Berlin", cfg.BusinessTZ.String())
		require.Equal(t, "127.0.0.1:6000", cfg.AuthListen.GRPC)
		require.Equal(t, ":8081", cfg.AuthListen.HTTP)
		require.Equal(t, ":9999", cfg.TasksListen.HTTP)
		require.Zero(t, cfg.AuthClient.CacheTTL)
		require.Equal(t, time.Hour, cfg.Auth.TokenTTL)
	})

	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"an unknown time zone is refused", map[string]string{"ATES_BUSINESS_TZ": "Mars/Olympus"}, "ATES_BUSINESS_TZ"},
		{"a short HMAC key is refused", map[string]string{"ATES_AUTH_HMAC_KEY": "short"}, "ATES_AUTH_HMAC_KEY"},
		{"a zero token lifetime is refused", map[string]string{"ATES_AUTH_TOKEN_TTL": "0s"}, "ATES_AUTH_TOKEN_TTL"},
		{"an unknown log format is refused", map[string]string{"ATES_LOG_FORMAT": "xml"}, "ATES_LOG_FORMAT"},
		{"an unknown SMTP TLS mode is refused", map[string]string{"ATES_SMTP_TLS": "maybe"}, "ATES_SMTP_TLS"},
		{"a sub-second heartbeat is refused", map[string]string{"ATES_AMQP_HEARTBEAT": "500ms"}, "ATES_AMQP_HEARTBEAT"},
		{"a zero confirm timeout is refused", map[string]string{"ATES_AMQP_CONFIRM_TIMEOUT": "0s"}, "ATES_AMQP_CONFIRM_TIMEOUT"},
		{"a zero mailsender prefetch is refused", map[string]string{"ATES_MAILSENDER_PREFETCH": "0"}, "ATES_MAILSENDER_PREFETCH"},
		{"a tiny request cap is refused", map[string]string{"ATES_MAX_REQUEST_BYTES": "100"}, "ATES_MAX_REQUEST_BYTES"},
		{"a write timeout a waiting call would outlast is refused", map[string]string{"ATES_HTTP_WRITE_TIMEOUT": "30s"}, "ATES_HTTP_WRITE_TIMEOUT"},
		{"a certificate without its key is refused", map[string]string{"ATES_TLS_CERT_FILE": "cert.pem"}, "ATES_TLS_KEY_FILE"},
		{"an auth cache longer than 30s is refused: revoked tokens would live on", map[string]string{"ATES_AUTH_CACHE_TTL": "31s"}, "ATES_AUTH_CACHE_TTL"},
		{"a negative auth cache is refused", map[string]string{"ATES_AUTH_CACHE_TTL": "-1s"}, "ATES_AUTH_CACHE_TTL"},
		{"zero tokens per user is refused", map[string]string{"ATES_AUTH_MAX_TOKENS": "0"}, "ATES_AUTH_MAX_TOKENS"},
		{"more than 1000 tokens per user is refused", map[string]string{"ATES_AUTH_MAX_TOKENS": "1001"}, "ATES_AUTH_MAX_TOKENS"},
		{"a zero token sweep interval is refused", map[string]string{"ATES_AUTH_TOKEN_SWEEP_INTERVAL": "0s"}, "ATES_AUTH_TOKEN_SWEEP_INTERVAL"},
		{"a trusted proxy that is not a CIDR is refused", map[string]string{"ATES_TRUSTED_PROXIES": "proxy.example.com"}, "ATES_TRUSTED_PROXIES"},
		{"a negative burst is refused", map[string]string{"ATES_AUTH_REGISTER_PER_ADDR_BURST": "-1"}, "ATES_AUTH_REGISTER_PER_ADDR_BURST"},
		{"a limit that never refills is refused", map[string]string{"ATES_TASKS_CREATE_PER_USER_EVERY": "0s"}, "ATES_TASKS_CREATE_PER_USER_EVERY"},
		{"an unknown limited role is refused", map[string]string{"ATES_TASKS_CREATE_LIMITED_ROLES": "worker,intern"}, "intern"},
		{"a CORS origin with a path is refused", map[string]string{"ATES_CORS_ORIGINS": "https://app.example.com/"}, "ATES_CORS_ORIGINS"},
		{"a CORS origin without a scheme is refused", map[string]string{"ATES_CORS_ORIGINS": "app.example.com"}, "ATES_CORS_ORIGINS"},
		{"a negative reassign-all cap is refused", map[string]string{"ATES_TASKS_REASSIGN_PER_MINUTE": "-1"}, "ATES_TASKS_REASSIGN_PER_MINUTE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.LoadFrom(tc.vars)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
