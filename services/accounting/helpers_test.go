package accounting_test

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	"github.com/ates/ates/services/accounting"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server/servertest"
)

// env is a running accounting API with a real auth service on a private database.
type env struct {
	*authtest.Env
	book   *ledgertest.Book
	client accountingv1.AccountingServiceClient
	http   string
	loc    *time.Location
}

// newEnv starts auth and accounting; loc is the business time zone (UTC if nil).
func newEnv(t *testing.T, loc *time.Location) *env {
	t.Helper()
	pool, _ := pgtest.NewDB(t)
	e := &env{Env: authtest.Start(t, pool), book: ledgertest.New(t, pool), loc: time.UTC}
	if loc != nil {
		e.loc = loc
	}
	cfg := e.Config
	cfg.BusinessTZ = e.loc
	cfg.AccountingListen = config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	srv, err := accounting.New(cfg, &app.Deps{Pool: pool, Auth: e.Authenticator(t)}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	servertest.Serve(t, srv.Serve)
	e.client = accountingv1.NewAccountingServiceClient(servertest.Dial(t, srv.Server))
	e.http = srv.HTTPAddr()
	return e
}

// closeDay closes day (and any earlier open day) as dailyaccounting does.
func (e *env) closeDay(t *testing.T, day string) {
	t.Helper()
	d, err := bizday.Parse(day)
	require.NoError(t, err)
	_, err = dailyaccounting.NewCloser(e.Pool, e.loc, slog.New(slog.DiscardHandler)).CloseDay(t.Context(), d)
	require.NoError(t, err)
}

// balance reads a user's balance of day as caller.
func (e *env) balance(t *testing.T, caller authtest.User, userID, day string) *accountingv1.GetBalanceResponse {
	t.Helper()
	resp, err := e.client.GetBalance(caller.Context(t.Context()), &accountingv1.GetBalanceRequest{UserId: userID, Date: day})
	require.NoError(t, err)
	return resp
}

// figures are a balance's amounts, to compare with hand-computed ones.
func figures(b *accountingv1.Balance) ledgertest.Balance {
	return ledgertest.Balance{
		Opening: b.GetOpening(), Rewards: b.GetRewards(), Fees: b.GetFees(),
		Closing: b.GetClosing(), Payout: b.GetPayout(), Carry: b.GetCarry(),
	}
}

// rest calls accounting over HTTP with token and decodes the JSON answer.
func (e *env) rest(t *testing.T, path, token string) (int, map[string]any) {
	t.Helper()
	return servertest.REST(t, e.http, http.MethodGet, path, token, "")
}
