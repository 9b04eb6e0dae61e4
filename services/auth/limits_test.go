package auth_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/internal/server/servertest"
)

// restLogin posts a login over REST through client and returns the status, the
// Retry-After header and the answer.
func restLogin(t *testing.T, env *authtest.Env, client *http.Client, header http.Header, photoHash string) (int, string, map[string]any) {
	t.Helper()
	code, h, out := servertest.RESTFrom(t, client, env.HTTPAddr, "POST", "/v1/auth/login", "", header, fmt.Sprintf(`{"photo_hash":%q}`, photoHash))
	return code, h.Get("Retry-After"), out
}

// refusedMetric reads ates_ratelimit_refused_total for one limit from /metrics, where
// auth labels its metrics service="auth".
func refusedMetric(t *testing.T, env *authtest.Env, limit string) int {
	t.Helper()
	resp, err := http.Get("http://" + env.HTTPAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	prefix := `ates_ratelimit_refused_total{limit="` + limit + `",service="auth"} `
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// TestFailedLoginsAreLimited is the attack of issue 9: 2,000 wrong logins as fast as
// one client can send them. Only the first ten (ATES_AUTH_FAILED_LOGINS_PER_ADDR_BURST)
// are looked at; the rest are refused with 429 and Retry-After, the right photo hash
// included, while a user at another address logs in as usual.
func TestFailedLoginsAreLimited(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	victim := env.NewUser(t, authv1.Role_ROLE_WORKER)
	attacker := servertest.ClientFrom(t, "127.0.0.2")

	answers := map[int]int{}
	start := time.Now()
	for i := range 2000 {
		code, retryAfter, out := restLogin(t, env, attacker, nil, fmt.Sprintf("wrong-guess-%04d", i))
		answers[code]++
		if code == http.StatusTooManyRequests {
			s, err := strconv.Atoi(retryAfter)
			require.NoError(t, err, "Retry-After %q", retryAfter)
			require.True(t, s >= 1 && s <= 30, "Retry-After %d: one failure more every 30s", s)
			require.Contains(t, out["message"], "too many failed logins from your address")
		}
	}
	// Ten, and on a slow machine one more for every 30s the attack lasted.
	looked := answers[http.StatusUnauthorized]
	require.True(t, looked >= 10 && looked <= 10+int(time.Since(start)/(30*time.Second)), "%d failures looked at", looked)
	require.Equal(t, 2000-looked, answers[http.StatusTooManyRequests], "all the others refused: %v", answers)

	code, _, _ := restLogin(t, env, attacker, nil, victim.PhotoHash)
	require.Equal(t, http.StatusTooManyRequests, code, "a refused attempt is not even checked")
	_, err := authv1.NewAuthServiceClient(servertest.DialFrom(t, env.GRPCAddr, "127.0.0.2")).
		Login(context.Background(), &authv1.LoginRequest{PhotoHash: victim.PhotoHash})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "over gRPC the same address is refused the same way")
	delay, ok := ratelimit.RetryAfter(err)
	require.True(t, ok, "gRPC clients get the delay as a RetryInfo")
	require.True(t, delay > 0 && delay <= 30*time.Second, "delay %s", delay)

	code, _, out := restLogin(t, env, http.DefaultClient, nil, victim.PhotoHash)
	require.Equal(t, http.StatusOK, code, "another address logs in straight after: %v", out)
	require.NotEmpty(t, out["token"])
	_, err = env.Client.Login(context.Background(), &authv1.LoginRequest{PhotoHash: victim.PhotoHash})
	require.NoError(t, err)

	require.Equal(t, 2000-looked+2, refusedMetric(t, env, "failed_logins_per_addr"))
}

// TestSuccessfulLoginsAreNotCounted: a user who logs in far more often than the burst,
// between failures of their own, is never refused: only failures are counted.
func TestSuccessfulLoginsAreNotCounted(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	u := env.NewUser(t, authv1.Role_ROLE_WORKER)
	client := servertest.ClientFrom(t, "127.0.0.2")
	for range 9 {
		code, _, _ := restLogin(t, env, client, nil, "a wrong one")
		require.Equal(t, http.StatusUnauthorized, code)
	}
	for range 50 {
		code, _, out := restLogin(t, env, client, nil, u.PhotoHash)
		require.Equal(t, http.StatusOK, code, "%v", out)
	}
	code, _, _ := restLogin(t, env, client, nil, "a wrong one")
	require.Equal(t, http.StatusUnauthorized, code, "the tenth failure is still looked at")
	code, _, _ = restLogin(t, env, client, nil, "a wrong one")
	require.Equal(t, http.StatusTooManyRequests, code, "the eleventh is not")
}

// TestFailedLoginsAreLimitedOverall: failures spread over many addresses (here through
// a trusted proxy's X-Forwarded-For) meet the limit over all clients; then every login
// is refused until it refills, whatever the address.
func TestFailedLoginsAreLimitedOverall(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	env := authtest.StartWith(t, pool, func(cfg *config.Config) {
		cfg.Limits.FailedLogins = config.RateLimit{Burst: 5, Every: time.Hour}
		cfg.Limits.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	u := env.NewUser(t, authv1.Role_ROLE_WORKER)
	from := func(i int) http.Header { return http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i)}} }

	for i := range 5 {
		code, _, _ := restLogin(t, env, http.DefaultClient, from(i), "a wrong one")
		require.Equal(t, http.StatusUnauthorized, code, "address %d", i)
	}
	code, retryAfter, out := restLogin(t, env, http.DefaultClient, from(5), "a wrong one")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "3600", retryAfter, "one more failure an hour")
	require.Contains(t, out["message"], "too many failed logins from all clients")
	code, _, _ = restLogin(t, env, http.DefaultClient, from(6), u.PhotoHash)
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, 2, refusedMetric(t, env, "failed_logins"))
}

// TestRegisterFloodIsLimited: registrations without an admin's token are limited per
// address (ATES_AUTH_REGISTER_PER_ADDR_BURST, 100); an admin and other addresses are not
// held up.
func TestRegisterFloodIsLimited(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	admin := env.NewUser(t, authv1.Role_ROLE_ADMIN)
	flood := servertest.ClientFrom(t, "127.0.0.2")
	register := func(token string) (int, string) {
		req := registerRequest(authv1.Role_ROLE_WORKER)
		body := fmt.Sprintf(`{"name":%q,"email":%q,"role":"ROLE_WORKER","photo_hash":%q}`, req.Name, req.Email, req.PhotoHash)
		code, h, _ := servertest.RESTFrom(t, flood, env.HTTPAddr, "POST", "/v1/auth/register", token, nil, body)
		return code, h.Get("Retry-After")
	}
	start := time.Now()
	accepted := 0
	code, retryAfter := register("")
	for ; code == http.StatusOK && accepted < 1000; code, retryAfter = register("") {
		accepted++
	}
	require.Equal(t, http.StatusTooManyRequests, code)
	// A hundred, and on a slow machine one more for every 10s the flood lasted.
	require.True(t, accepted >= 100 && accepted <= 100+int(time.Since(start)/(10*time.Second)), "%d accepted", accepted)
	s, err := strconv.Atoi(retryAfter)
	require.NoError(t, err, "Retry-After %q", retryAfter)
	require.True(t, s >= 1 && s <= 10, "Retry-After %d: one more every 10s", s)

	code, _ = register(admin.Token)
	require.Equal(t, http.StatusOK, code, "an admin registering staff is not a flood")
	_, err = env.Client.Register(context.Background(), registerRequest(authv1.Role_ROLE_WORKER))
	require.NoError(t, err, "another address registers as usual")

	var n int
	require.NoError(t, env.Pool.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&n))
	require.Equal(t, 1+accepted+2, n, "the admin, what the flood got in, and the two allowed after")
}

// TestConcurrentFailedLoginsAreLimited: guesses sent all at once are limited like guesses
// sent one after another. Each call takes its token before the photo hash is looked at;
// checking first and charging after the failure let every call in flight through, so
// one address got as many guesses as it could send at once, not ten.
func TestConcurrentFailedLoginsAreLimited(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	victim := env.NewUser(t, authv1.Role_ROLE_WORKER)
	attacker := authv1.NewAuthServiceClient(servertest.DialFrom(t, env.GRPCAddr, "127.0.0.2"))

	const n = 200
	codes := make(chan codes.Code, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			guess := fmt.Sprintf("wrong-guess-%04d", i)
			if i == n-1 {
				guess = victim.PhotoHash
			}
			_, err := attacker.Login(context.Background(), &authv1.LoginRequest{PhotoHash: guess})
			codes <- status.Code(err)
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	answers := map[string]int{}
	for c := range codes {
		answers[c.String()]++
	}
	looked := answers["Unauthenticated"] + answers["OK"]
	require.LessOrEqual(t, looked, 11, "guesses looked at: %v", answers)
	require.Equal(t, n-looked, answers["ResourceExhausted"], "%v", answers)
}

// TestConcurrentSuccessfulLoginsAreNotRefused: logins in flight hold a token each until
// they answer, but a login that finds the bucket empty waits for them instead of being
// refused, so many right logins at once from one address (a script, an office behind
// one NAT address) all succeed.
func TestConcurrentSuccessfulLoginsAreNotRefused(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	client := authv1.NewAuthServiceClient(servertest.DialFrom(t, env.GRPCAddr, "127.0.0.2"))
	users := make([]authtest.User, 30)
	for i := range users {
		users[i] = env.NewUser(t, authv1.Role_ROLE_WORKER)
	}
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			_, err := client.Login(context.Background(), &authv1.LoginRequest{PhotoHash: u.PhotoHash})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
