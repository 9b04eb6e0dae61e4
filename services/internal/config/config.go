// Package config reads aTES settings from ATES_* environment variables, once, into one
// struct. Every setting has a default that runs the all-in-one process against local
// PostgreSQL, RabbitMQ and Mailpit.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
)

// Listen holds the addresses one service listens on.
type Listen struct {
	// GRPC is the gRPC listen address; empty for services without a gRPC API.
	GRPC string `env:"GRPC_ADDR"`
	// HTTP serves REST (where there is an API), /healthz, /readyz and /metrics.
	HTTP string `env:"HTTP_ADDR"`
}

// The development keys are the defaults of the secret keys. They are public (they are in
// this file), so a service refuses to start with one unless ATES_ALLOW_DEV_KEYS is set,
// as `make run` and the test suites do.
const (
	// DevHMACKey is the default ATES_AUTH_HMAC_KEY.
	DevHMACKey = "dev-only-change-me"
	// DevTasksEventKeys is the default ATES_TASKS_EVENT_KEYS.
	DevTasksEventKeys = "dev1:dev-only-tasks-event-key-change-me"
	// DevDailyaccountingEventKeys is the default ATES_DAILYACCOUNTING_EVENT_KEYS.
	DevDailyaccountingEventKeys = "dev1:dev-only-dailyaccounting-event-key-change-me"
)

// MaxAuthCacheTTL caps ATES_AUTH_CACHE_TTL: a revoked token stops working in every
// service at most this long after auth refuses it.
const MaxAuthCacheTTL = 30 * time.Second

// Auth holds the auth service's secrets and token policy.
type Auth struct {
	// HMACKey keys the HMAC-SHA-256 under which photo hashes are stored.
	HMACKey string `env:"ATES_AUTH_HMAC_KEY" envDefault:"dev-only-change-me"`
	// TokenTTL is how long a login token stays valid.
	TokenTTL time.Duration `env:"ATES_AUTH_TOKEN_TTL" envDefault:"24h"`
	// MaxTokens is how many unexpired tokens one user may hold; a login beyond it revokes
	// the oldest.
	MaxTokens int `env:"ATES_AUTH_MAX_TOKENS" envDefault:"10"`
	// TokenSweepInterval is how often expired tokens are deleted.
	TokenSweepInterval time.Duration `env:"ATES_AUTH_TOKEN_SWEEP_INTERVAL" envDefault:"1h"`
}

// ErrDevKey is why a service refuses to start with a development key.
var ErrDevKey = errors.New("development key")

// devKeys are the secrets each service holds, by variable, with their public defaults.
var devKeys = map[string][]struct{ name, dev string }{
	"auth":                 {{"ATES_AUTH_HMAC_KEY", DevHMACKey}},
	events.Tasks:           {{"ATES_TASKS_EVENT_KEYS", DevTasksEventKeys}},
	events.Taskhandler:     {{"ATES_TASKS_EVENT_KEYS", DevTasksEventKeys}},
	events.Dailyaccounting: {{"ATES_DAILYACCOUNTING_EVENT_KEYS", DevDailyaccountingEventKeys}},
	events.Mailsender:      {{"ATES_DAILYACCOUNTING_EVENT_KEYS", DevDailyaccountingEventKeys}},
}

// DevKeysOf names the secret keys the named service would run with that are still their
// public development defaults. An event keyring counts if any of its keys is the
// development one: a consumer would still accept events signed with it.
func (c Config) DevKeysOf(service string) []string {
	value := map[string]string{
		"ATES_AUTH_HMAC_KEY":              c.Auth.HMACKey,
		"ATES_TASKS_EVENT_KEYS":           c.Broker.TasksEventKeys,
		"ATES_DAILYACCOUNTING_EVENT_KEYS": c.Broker.DailyaccountingEventKeys,
	}
	var names []string
	for _, k := range devKeys[service] {
		_, devSecret, _ := strings.Cut(k.dev, ":")
		if v := value[k.name]; v == k.dev || (devSecret != "" && strings.Contains(v, devSecret)) {
			names = append(names, k.name)
		}
	}
	return names
}

// CheckKeys refuses the development keys of the named service unless AllowDevKeys is
// set, saying how to make real ones.
func (c Config) CheckKeys(service string) error {
	names := c.DevKeysOf(service)
	if len(names) == 0 || c.AllowDevKeys {
		return nil
	}
	return fmt.Errorf("%w: %s is the public development default: generate a secret with "+
		"`openssl rand -base64 32` (ATES_AUTH_HMAC_KEY: keep it, changing it later locks every "+
		"user out; event keys: \"id:secret\", docs/security-events.md) or set "+
		"ATES_ALLOW_DEV_KEYS=true on a development machine", ErrDevKey, strings.Join(names, " and "))
}

// AuthClient is how the other services reach auth.
type AuthClient struct {
	// Addr is auth's gRPC address.
	Addr string `env:"ATES_AUTH_ADDR" envDefault:"127.0.0.1:50051"`
	// CacheTTL is how long a positive Authenticate answer is reused; 0 disables the cache.
	// It is also how long a revoked token may still work outside auth (at most
	// MaxAuthCacheTTL).
	CacheTTL time.Duration `env:"ATES_AUTH_CACHE_TTL" envDefault:"5s"`
}

// SMTP is the mail server mailsender sends through.
type SMTP struct {
	// Addr is host:port of the SMTP server.
	Addr string `env:"ATES_SMTP_ADDR" envDefault:"127.0.0.1:1025"`
	// Username and Password authenticate to the server; empty means no auth.
	Username string `env:"ATES_SMTP_USERNAME"`
	Password string `env:"ATES_SMTP_PASSWORD"`
	// TLS is "none", "starttls" (when offered), "starttls-required" or "tls".
	TLS string `env:"ATES_SMTP_TLS" envDefault:"none"`
	// From is the sender address of every mail.
	From string `env:"ATES_SMTP_FROM" envDefault:"aTES <noreply@ates.local>"`
}

// AMQP is how every service treats its broker connection: short enough timeouts that a
// hung or lost broker fails calls in seconds and is found again as soon as it is back.
type AMQP struct {
	// Heartbeat is the AMQP heartbeat interval (whole seconds); a connection on which
	// nothing arrives for 1.5 intervals is closed and reconnected.
	Heartbeat time.Duration `env:"ATES_AMQP_HEARTBEAT" envDefault:"2s"`
	// HandshakeTimeout bounds the TCP, TLS and AMQP handshakes of one connection attempt.
	HandshakeTimeout time.Duration `env:"ATES_AMQP_HANDSHAKE_TIMEOUT" envDefault:"3s"`
	// ConfirmTimeout is how long a publish waits for the broker's confirm before its
	// outcome is reported unknown.
	ConfirmTimeout time.Duration `env:"ATES_AMQP_CONFIRM_TIMEOUT" envDefault:"2s"`
	// ReconnectMax caps the jittered backoff between reconnect attempts (the first
	// attempt after a loss is immediate).
	ReconnectMax time.Duration `env:"ATES_AMQP_RECONNECT_MAX" envDefault:"2s"`
}

// Transport bounds what one request may cost a service and says whether its servers
// and its calls to other services travel over TLS.
type Transport struct {
	// MaxRequestBytes caps a REST request body and a gRPC request message.
	MaxRequestBytes int `env:"ATES_MAX_REQUEST_BYTES" envDefault:"65536"`
	// ReadTimeout bounds reading one HTTP request, headers and body.
	ReadTimeout time.Duration `env:"ATES_HTTP_READ_TIMEOUT" envDefault:"10s"`
	// WriteTimeout bounds an HTTP request from its headers to the end of its answer; it
	// must leave room for a write call that waits (ATES_WAIT_TIMEOUT).
	WriteTimeout time.Duration `env:"ATES_HTTP_WRITE_TIMEOUT" envDefault:"60s"`
	// IdleTimeout closes a keep-alive HTTP connection, or a gRPC connection, that carried
	// nothing for this long.
	IdleTimeout time.Duration `env:"ATES_HTTP_IDLE_TIMEOUT" envDefault:"120s"`
	// TLSCertFile and TLSKeyFile (PEM) make every service serve gRPC and HTTPS instead of
	// plaintext; both or neither.
	TLSCertFile string `env:"ATES_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"ATES_TLS_KEY_FILE"`
	// TLSCAFile (PEM) makes services call auth over TLS, trusting these CAs; it is also
	// trusted for amqps:// broker URLs.
	TLSCAFile string `env:"ATES_TLS_CA_FILE"`
	// CORSOrigins are the origins ("https://app.example.com", or "*" for any) whose pages
	// may call the REST APIs from a browser; empty: no CORS headers, other origins are
	// refused by browsers.
	CORSOrigins []string `env:"ATES_CORS_ORIGINS"`
}

// RateLimit is a token bucket: Burst calls at once, then one more every Every. A Burst
// of 0 turns the limit off.
type RateLimit struct {
	Burst int           `env:"BURST"`
	Every time.Duration `env:"EVERY"`
}

// Limits are the abuse limits of the APIs (docs/security-limits.md).
type Limits struct {
	// TrustedProxyList are the HTTP peers (CIDRs or single addresses, comma-separated)
	// whose X-Forwarded-For header names the client; from anyone else it is ignored.
	TrustedProxyList []string `env:"ATES_TRUSTED_PROXIES"`
	// TrustedProxies is TrustedProxyList parsed.
	TrustedProxies []netip.Prefix `env:"-"`
	// FailedLoginsPerAddr limits failed logins from one client address (an IPv6 /64).
	FailedLoginsPerAddr RateLimit `envPrefix:"ATES_AUTH_FAILED_LOGINS_PER_ADDR_"`
	// FailedLogins limits failed logins from everyone together.
	FailedLogins RateLimit `envPrefix:"ATES_AUTH_FAILED_LOGINS_"`
	// RegisterPerAddr limits registrations without an admin's token from one address.
	RegisterPerAddr RateLimit `envPrefix:"ATES_AUTH_REGISTER_PER_ADDR_"`
	// CreateTaskPerUser limits task creation by one user of a role in CreateTaskRoles.
	CreateTaskPerUser RateLimit `envPrefix:"ATES_TASKS_CREATE_PER_USER_"`
	// CreateTaskRoles are the roles CreateTaskPerUser applies to.
	CreateTaskRoles []string `env:"ATES_TASKS_CREATE_LIMITED_ROLES" envDefault:"worker,accountant"`
	// ReassignPerMinute caps the reassign-all calls of one caller in a minute; 0: no cap.
	ReassignPerMinute int `env:"ATES_TASKS_REASSIGN_PER_MINUTE" envDefault:"10"`
}

// Web is where the web dashboard (served by analytics) calls the public REST APIs, with
// the user's token, like any other client. Empty: http://127.0.0.1 and the port of the
// service's own HTTP listen setting.
type Web struct {
	AuthURL       string `env:"ATES_WEB_AUTH_URL"`
	TasksURL      string `env:"ATES_WEB_TASKS_URL"`
	AccountingURL string `env:"ATES_WEB_ACCOUNTING_URL"`
	AnalyticsURL  string `env:"ATES_WEB_ANALYTICS_URL"`
}

// Broker is how each service that uses the broker logs in to it and signs its events.
type Broker struct {
	// TasksURL, TaskhandlerURL, DailyaccountingURL and MailsenderURL are each service's
	// own AMQP URL: its own user, with only the permissions it needs (`ates broker
	// setup` creates the users these URLs name). Empty: the service uses AMQPURL.
	TasksURL           string `env:"ATES_TASKS_AMQP_URL"`
	TaskhandlerURL     string `env:"ATES_TASKHANDLER_AMQP_URL"`
	DailyaccountingURL string `env:"ATES_DAILYACCOUNTING_AMQP_URL"`
	MailsenderURL      string `env:"ATES_MAILSENDER_AMQP_URL"`
	// TasksEventKeys signs the task events (tasks) and verifies them (taskhandler);
	// DailyaccountingEventKeys does the same for send_email (dailyaccounting,
	// mailsender). Each is "id:secret" pairs separated by commas: the first signs, every
	// one verifies (key rotation).
	TasksEventKeys           string `env:"ATES_TASKS_EVENT_KEYS" envDefault:"dev1:dev-only-tasks-event-key-change-me"`
	DailyaccountingEventKeys string `env:"ATES_DAILYACCOUNTING_EVENT_KEYS" envDefault:"dev1:dev-only-dailyaccounting-event-key-change-me"`
}

// Queues name the queues of the two consumers, taskhandler and mailsender.
type Queues struct {
	Taskhandler string
	Mailsender  string
}

// Config is every setting of the ates binary.
type Config struct {
	// DatabaseURL is the PostgreSQL connection string.
	DatabaseURL string `env:"ATES_DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/ates?sslmode=disable"`
	// AMQPURL is the RabbitMQ connection string.
	AMQPURL string `env:"ATES_AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/"`
	// Exchange is the durable topic exchange every event goes through.
	Exchange string `env:"ATES_AMQP_EXCHANGE" envDefault:"ates.events"`
	// BusinessTZName is the IANA time zone whose calendar dates are business days.
	BusinessTZName string `env:"ATES_BUSINESS_TZ" envDefault:"UTC"`
	// BusinessTZ is BusinessTZName loaded.
	BusinessTZ *time.Location `env:"-"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"ATES_LOG_LEVEL" envDefault:"info"`
	// LogFormat is text or json.
	LogFormat string `env:"ATES_LOG_FORMAT" envDefault:"text"`
	// AllowDevKeys lets services start with the public development keys (DevHMACKey and
	// the default event keys): for a laptop or a test, never where real users are.
	AllowDevKeys bool `env:"ATES_ALLOW_DEV_KEYS" envDefault:"false"`
	// Pprof serves Go's profiles under /debug/pprof/ on each service's HTTP port (the
	// one with /metrics). Off by default: profiles reveal internals and cost CPU.
	Pprof bool `env:"ATES_PPROF" envDefault:"false"`
	// StartupTimeout bounds how long a service waits for PostgreSQL and RabbitMQ to answer
	// when it starts before them.
	StartupTimeout time.Duration `env:"ATES_STARTUP_TIMEOUT" envDefault:"60s"`
	// ShutdownTimeout bounds the graceful stop of servers and consumers.
	ShutdownTimeout time.Duration `env:"ATES_SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// EventTimeout bounds the database transaction that applies one event.
	EventTimeout time.Duration `env:"ATES_EVENT_TIMEOUT" envDefault:"10s"`
	// EventRetryMin and EventRetryMax bound the capped, jittered delay before a consumer
	// handles a failed event again (it is never dead-lettered for a transient failure).
	EventRetryMin time.Duration `env:"ATES_EVENT_RETRY_MIN" envDefault:"500ms"`
	EventRetryMax time.Duration `env:"ATES_EVENT_RETRY_MAX" envDefault:"5s"`
	// WaitTimeout bounds how long a write call with `wait` waits when the caller set no
	// shorter deadline.
	WaitTimeout time.Duration `env:"ATES_WAIT_TIMEOUT" envDefault:"30s"`
	// TasksMaxBacklog is how many events may wait in taskhandler's queue before the tasks
	// API holds writes back (backpressure); 0 never holds them.
	TasksMaxBacklog int `env:"ATES_TASKS_MAX_BACKLOG" envDefault:"1000"`
	// TasksBacklogWait is how long a held write waits for the backlog to shrink before it
	// is refused with ResourceExhausted.
	TasksBacklogWait time.Duration `env:"ATES_TASKS_BACKLOG_WAIT" envDefault:"2s"`
	// ReassignBatchSize is how many task ids one tasks_reassign event carries (at most 1000).
	ReassignBatchSize int `env:"ATES_REASSIGN_BATCH_SIZE" envDefault:"1000"`
	// TaskhandlerPrefetch is how many events taskhandler holds unacknowledged at once:
	// the pool its batches are made from.
	TaskhandlerPrefetch int `env:"ATES_TASKHANDLER_PREFETCH" envDefault:"256"`
	// TaskhandlerBatch is the most events taskhandler applies in one transaction.
	TaskhandlerBatch int `env:"ATES_TASKHANDLER_BATCH" envDefault:"128"`
	// TaskhandlerAppliers is how many batches taskhandler applies at once.
	TaskhandlerAppliers int `env:"ATES_TASKHANDLER_APPLIERS" envDefault:"2"`
	// MailsenderPrefetch is how many mails mailsender sends at once, each over its own
	// persistent SMTP session; the database pool needs a connection for each.
	MailsenderPrefetch int `env:"ATES_MAILSENDER_PREFETCH" envDefault:"16"`
	// CloseDaySchedule is the cron spec (in the business time zone) of the daily close.
	CloseDaySchedule string `env:"ATES_CLOSE_DAY_SCHEDULE" envDefault:"5 0 * * *"`
	// OutboxPollInterval is how often dailyaccounting's relay looks for unsent outbox rows.
	OutboxPollInterval time.Duration `env:"ATES_OUTBOX_POLL_INTERVAL" envDefault:"1s"`

	// Queues are the consumers' queue names: not settings (production uses
	// events.TaskhandlerQueue and events.MailsenderQueue), but tests give each test its own.
	Queues Queues `env:"-"`

	Transport  Transport
	Auth       Auth
	AuthClient AuthClient
	SMTP       SMTP
	AMQP       AMQP
	Limits     Limits
	Broker     Broker
	Web        Web

	AuthListen            Listen `envPrefix:"ATES_AUTH_"`
	TasksListen           Listen `envPrefix:"ATES_TASKS_"`
	AccountingListen      Listen `envPrefix:"ATES_ACCOUNTING_"`
	AnalyticsListen       Listen `envPrefix:"ATES_ANALYTICS_"`
	TaskhandlerListen     Listen `envPrefix:"ATES_TASKHANDLER_"`
	DailyaccountingListen Listen `envPrefix:"ATES_DAILYACCOUNTING_"`
	MailsenderListen      Listen `envPrefix:"ATES_MAILSENDER_"`
}

// defaults holds the listen addresses of docs/product.md and the abuse limits, which env tags
// cannot express per prefix.
func defaults() Config {
	return Config{
		AuthListen:            Listen{GRPC: ":50051", HTTP: ":8081"},
		TasksListen:           Listen{GRPC: ":50052", HTTP: ":8082"},
		AccountingListen:      Listen{GRPC: ":50053", HTTP: ":8083"},
		AnalyticsListen:       Listen{GRPC: ":50054", HTTP: ":8084"},
		TaskhandlerListen:     Listen{HTTP: ":8085"},
		DailyaccountingListen: Listen{HTTP: ":8086"},
		MailsenderListen:      Listen{HTTP: ":8087"},
		Queues:                Queues{Taskhandler: events.TaskhandlerQueue, Mailsender: events.MailsenderQueue},
		Limits: Limits{
			FailedLoginsPerAddr: RateLimit{Burst: 10, Every: 30 * time.Second},
			FailedLogins:        RateLimit{Burst: 1000, Every: 100 * time.Millisecond},
			RegisterPerAddr:     RateLimit{Burst: 100, Every: 10 * time.Second},
			CreateTaskPerUser:   RateLimit{Burst: 20, Every: time.Second},
		},
	}
}

// DefaultTransport is Transport with every variable unset.
func DefaultTransport() Transport {
	var t Transport
	_ = env.ParseWithOptions(&t, env.Options{Environment: map[string]string{}}) // TestLoad checks that they parse
	return t
}

// Load reads the environment over the defaults and checks the result.
func Load() (Config, error) {
	return parse(env.Options{Environment: env.ToMap(os.Environ())})
}

// LoadFrom reads the given variables instead of the process environment (for tests).
func LoadFrom(vars map[string]string) (Config, error) {
	return parse(env.Options{Environment: vars})
}

func parse(opts env.Options) (Config, error) {
	cfg := defaults()
	if err := env.ParseWithOptions(&cfg, opts); err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", parseErrors(opts.Environment, err))
	}
	loc, err := time.LoadLocation(cfg.BusinessTZName)
	if err != nil {
		return Config{}, fmt.Errorf("check configuration: ATES_BUSINESS_TZ: %w", err)
	}
	cfg.BusinessTZ = loc
	if cfg.Limits.TrustedProxies, err = parsePrefixes(cfg.Limits.TrustedProxyList); err != nil {
		return Config{}, fmt.Errorf("check configuration: ATES_TRUSTED_PROXIES: %w", err)
	}
	for _, u := range []struct {
		url    *string
		listen Listen
	}{
		{&cfg.Web.AuthURL, cfg.AuthListen},
		{&cfg.Web.TasksURL, cfg.TasksListen},
		{&cfg.Web.AccountingURL, cfg.AccountingListen},
		{&cfg.Web.AnalyticsURL, cfg.AnalyticsListen},
	} {
		if *u.url == "" {
			*u.url = localURL(u.listen.HTTP)
		}
	}
	for i, o := range cfg.Transport.CORSOrigins {
		cfg.Transport.CORSOrigins[i] = strings.TrimSpace(o)
	}
	cfg.Transport.CORSOrigins = slices.DeleteFunc(cfg.Transport.CORSOrigins, func(o string) bool { return o == "" })
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("check configuration: %w", err)
	}
	return cfg, nil
}

// localURL is http://127.0.0.1 on the port of the listen address addr.
func localURL(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		port = strings.TrimPrefix(addr, ":")
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port)
}

func (c Config) validate() error {
	var errs []error
	if c.Auth.TokenTTL <= 0 {
		errs = append(errs, errors.New("ATES_AUTH_TOKEN_TTL must be positive"))
	}
	if len(c.Auth.HMACKey) < 16 {
		errs = append(errs, errors.New("ATES_AUTH_HMAC_KEY must be at least 16 bytes"))
	}
	if c.Auth.MaxTokens < 1 || c.Auth.MaxTokens > 1000 {
		errs = append(errs, errors.New("ATES_AUTH_MAX_TOKENS must be between 1 and 1000"))
	}
	if c.Auth.TokenSweepInterval <= 0 {
		errs = append(errs, errors.New("ATES_AUTH_TOKEN_SWEEP_INTERVAL must be positive"))
	}
	if c.AuthClient.CacheTTL < 0 || c.AuthClient.CacheTTL > MaxAuthCacheTTL {
		errs = append(errs, fmt.Errorf("ATES_AUTH_CACHE_TTL must be between 0 and %s: a revoked token works in the other services until their cached answer ends", MaxAuthCacheTTL))
	}
	if c.AMQP.Heartbeat < time.Second {
		errs = append(errs, errors.New("ATES_AMQP_HEARTBEAT must be at least 1s"))
	}
	if c.AMQP.HandshakeTimeout <= 0 || c.AMQP.ConfirmTimeout <= 0 || c.AMQP.ReconnectMax <= 0 {
		errs = append(errs, errors.New("ATES_AMQP_HANDSHAKE_TIMEOUT, ATES_AMQP_CONFIRM_TIMEOUT and ATES_AMQP_RECONNECT_MAX must be positive"))
	}
	tasksKeys, terr := broker.ParseKeyring(c.Broker.TasksEventKeys)
	if terr != nil {
		errs = append(errs, fmt.Errorf("ATES_TASKS_EVENT_KEYS: %w", terr))
	}
	dailyKeys, derr := broker.ParseKeyring(c.Broker.DailyaccountingEventKeys)
	if derr != nil {
		errs = append(errs, fmt.Errorf("ATES_DAILYACCOUNTING_EVENT_KEYS: %w", derr))
	}
	// mailsender holds dailyaccounting's keys and may write to the dead-letter exchange,
	// through which it reaches taskhandler's queue: with a shared secret it could sign
	// task events that taskhandler applies (and taskhandler could sign mail).
	if terr == nil && derr == nil && tasksKeys.SharesSecret(dailyKeys) {
		errs = append(errs, errors.New("ATES_TASKS_EVENT_KEYS and ATES_DAILYACCOUNTING_EVENT_KEYS share a secret; "+
			"each producer needs its own, or either consumer could sign the other producer's events"))
	}
	if c.StartupTimeout <= 0 {
		errs = append(errs, errors.New("ATES_STARTUP_TIMEOUT must be positive"))
	}
	if c.WaitTimeout <= 0 {
		errs = append(errs, errors.New("ATES_WAIT_TIMEOUT must be positive"))
	}
	if c.TasksMaxBacklog < 0 || c.TasksBacklogWait <= 0 {
		errs = append(errs, errors.New("ATES_TASKS_MAX_BACKLOG must not be negative and ATES_TASKS_BACKLOG_WAIT must be positive"))
	}
	for _, u := range []struct{ name, value string }{
		{"ATES_WEB_AUTH_URL", c.Web.AuthURL}, {"ATES_WEB_TASKS_URL", c.Web.TasksURL},
		{"ATES_WEB_ACCOUNTING_URL", c.Web.AccountingURL}, {"ATES_WEB_ANALYTICS_URL", c.Web.AnalyticsURL},
	} {
		if p, err := url.Parse(u.value); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s must be an http:// or https:// URL, not %q", u.name, u.value))
		}
	}
	if c.ReassignBatchSize < 1 || c.ReassignBatchSize > 1000 {
		errs = append(errs, errors.New("ATES_REASSIGN_BATCH_SIZE must be between 1 and 1000"))
	}
	if c.TaskhandlerPrefetch < 1 {
		errs = append(errs, errors.New("ATES_TASKHANDLER_PREFETCH must be at least 1"))
	}
	if c.TaskhandlerAppliers < 1 || c.TaskhandlerAppliers > 64 {
		errs = append(errs, errors.New("ATES_TASKHANDLER_APPLIERS must be between 1 and 64"))
	}
	if c.TaskhandlerBatch < 1 || c.TaskhandlerBatch > 10000 {
		errs = append(errs, errors.New("ATES_TASKHANDLER_BATCH must be between 1 and 10000"))
	}
	if c.MailsenderPrefetch < 1 {
		errs = append(errs, errors.New("ATES_MAILSENDER_PREFETCH must be at least 1"))
	}
	if c.EventTimeout <= 0 {
		errs = append(errs, errors.New("ATES_EVENT_TIMEOUT must be positive"))
	}
	if c.EventRetryMin <= 0 || c.EventRetryMax < c.EventRetryMin {
		errs = append(errs, errors.New("ATES_EVENT_RETRY_MIN must be positive and ATES_EVENT_RETRY_MAX at least as long"))
	}
	if c.OutboxPollInterval <= 0 {
		errs = append(errs, errors.New("ATES_OUTBOX_POLL_INTERVAL must be positive"))
	}
	if c.Transport.MaxRequestBytes < 1024 || c.Transport.MaxRequestBytes > 64<<20 {
		errs = append(errs, errors.New("ATES_MAX_REQUEST_BYTES must be between 1024 and 67108864"))
	}
	if c.Transport.ReadTimeout <= 0 || c.Transport.IdleTimeout <= 0 {
		errs = append(errs, errors.New("ATES_HTTP_READ_TIMEOUT and ATES_HTTP_IDLE_TIMEOUT must be positive"))
	}
	// A write call may wait for the backlog and then for its event to be applied; the
	// HTTP answer must still be allowed out after both.
	if c.Transport.WriteTimeout <= c.WaitTimeout+c.TasksBacklogWait {
		errs = append(errs, fmt.Errorf("ATES_HTTP_WRITE_TIMEOUT must exceed ATES_WAIT_TIMEOUT + ATES_TASKS_BACKLOG_WAIT (%s)", c.WaitTimeout+c.TasksBacklogWait))
	}
	if (c.Transport.TLSCertFile == "") != (c.Transport.TLSKeyFile == "") {
		errs = append(errs, errors.New("ATES_TLS_CERT_FILE and ATES_TLS_KEY_FILE go together: set both or neither"))
	}
	for _, o := range c.Transport.CORSOrigins {
		if !validOrigin(o) {
			errs = append(errs, fmt.Errorf("ATES_CORS_ORIGINS: %q is not an origin (scheme://host[:port], as a browser sends it, or *)", o))
		}
	}
	errs = append(errs, c.Limits.validate()...)
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("ATES_LOG_FORMAT must be text or json, not %q", c.LogFormat))
	}
	switch c.SMTP.TLS {
	case "none", "starttls", "starttls-required", "tls":
	default:
		errs = append(errs, fmt.Errorf("ATES_SMTP_TLS must be none, starttls, starttls-required or tls, not %q", c.SMTP.TLS))
	}
	return errors.Join(errs...)
}

func (l Limits) validate() []error {
	var errs []error
	for _, r := range []struct {
		name string
		RateLimit
	}{
		{"ATES_AUTH_FAILED_LOGINS_PER_ADDR", l.FailedLoginsPerAddr},
		{"ATES_AUTH_FAILED_LOGINS", l.FailedLogins},
		{"ATES_AUTH_REGISTER_PER_ADDR", l.RegisterPerAddr},
		{"ATES_TASKS_CREATE_PER_USER", l.CreateTaskPerUser},
	} {
		if r.Burst < 0 || (r.Burst > 0 && r.Every <= 0) {
			errs = append(errs, fmt.Errorf("%s_BURST must not be negative, and %s_EVERY must be positive unless the burst is 0 (no limit)", r.name, r.name))
		}
	}
	for _, role := range l.CreateTaskRoles {
		if authn.ParseRole(role) == authv1.Role_ROLE_UNSPECIFIED {
			errs = append(errs, fmt.Errorf("ATES_TASKS_CREATE_LIMITED_ROLES: %q is not worker, manager, admin or accountant", role))
		}
	}
	if l.ReassignPerMinute < 0 {
		errs = append(errs, errors.New("ATES_TASKS_REASSIGN_PER_MINUTE must not be negative"))
	}
	return errs
}

// parsePrefixes reads CIDRs; a single address is the prefix of that address alone.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// AMQPURLOf is the AMQP URL the named service connects with: its own, or AMQPURL.
func (c Config) AMQPURLOf(service string) string {
	own := map[string]string{
		events.Tasks:           c.Broker.TasksURL,
		events.Taskhandler:     c.Broker.TaskhandlerURL,
		events.Dailyaccounting: c.Broker.DailyaccountingURL,
		events.Mailsender:      c.Broker.MailsenderURL,
	}[service]
	if own != "" {
		return own
	}
	return c.AMQPURL
}

// EventKeysOf is the keyring the named service signs its events with: nil for a
// service that publishes none.
func (c Config) EventKeysOf(service string) *broker.Keyring {
	return c.keyring(map[string]string{
		events.Tasks:           c.Broker.TasksEventKeys,
		events.Dailyaccounting: c.Broker.DailyaccountingEventKeys,
	}[service])
}

// TrustedKeysOf is the keyring of the producer whose events the named consumer accepts:
// taskhandler trusts tasks, mailsender trusts dailyaccounting; nil for anyone else.
func (c Config) TrustedKeysOf(consumer string) *broker.Keyring {
	return c.keyring(map[string]string{
		events.Taskhandler: c.Broker.TasksEventKeys,
		events.Mailsender:  c.Broker.DailyaccountingEventKeys,
	}[consumer])
}

// keyring parses keys, which validate checked; nil for none.
func (c Config) keyring(keys string) *broker.Keyring {
	if keys == "" {
		return nil
	}
	k, err := broker.ParseKeyring(keys)
	if err != nil {
		return nil // validate refused it: a Config from Load never gets here
	}
	return k
}

// validOrigin says whether o is "*" or an origin as browsers send it: http or https, a
// host, perhaps a port, nothing else (no path, not even a trailing slash).
func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery &&
		u.String() == o
}
