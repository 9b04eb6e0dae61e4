package accounting

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/accounting/internal/accountingdb"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
)

// defaultPageSize is the page size of a request that names none.
const defaultPageSize = 100

// Server implements accountingv1.AccountingServiceServer.
type Server struct {
	accountingv1.UnimplementedAccountingServiceServer
	store *store
	loc   *time.Location
	now   func() time.Time
	log   *slog.Logger
}

// GetBalance answers a user's balance for a day with one page of that day's audit log.
// Workers see only their own; the other roles may name anyone.
func (s *Server) GetBalance(ctx context.Context, req *accountingv1.GetBalanceRequest) (*accountingv1.GetBalanceResponse, error) {
	caller, err := authn.Require(ctx, authv1.Role_ROLE_WORKER, authv1.Role_ROLE_MANAGER, authv1.Role_ROLE_ADMIN, authv1.Role_ROLE_ACCOUNTANT)
	if err != nil {
		return nil, err
	}
	userID := caller.ID
	if req.GetUserId() != "" {
		if userID, err = uuid.Parse(req.GetUserId()); err != nil {
			return nil, server.InvalidField("user_id", err.Error())
		}
		if caller.Role == authv1.Role_ROLE_WORKER && userID != caller.ID {
			return nil, status.Error(codes.PermissionDenied, "user_id: a worker may read only their own balance")
		}
	}
	day, err := s.day(ctx, req.GetDate())
	if err != nil {
		return nil, err
	}
	afterID, err := parsePageToken(req.GetPageToken(), userID, day)
	if err != nil {
		return nil, err
	}
	size := req.GetPageSize()
	if size == 0 {
		size = defaultPageSize
	}
	// One more than asked tells whether another page follows.
	b, entries, err := s.store.Balance(ctx, userID, day, page{AfterID: afterID, Limit: size + 1})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &accountingv1.GetBalanceResponse{Balance: balanceProto(b)}
	if len(entries) > int(size) {
		entries = entries[:size]
		resp.NextPageToken = pageToken(userID, day, entries[len(entries)-1].ID)
	}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, entryProto(userID, e))
	}
	return resp, nil
}

// GetStats answers the company's earnings for a day: −(Σ rewards + Σ fees).
func (s *Server) GetStats(ctx context.Context, req *accountingv1.GetStatsRequest) (*accountingv1.GetStatsResponse, error) {
	if _, err := authn.Require(ctx, authv1.Role_ROLE_MANAGER, authv1.Role_ROLE_ADMIN, authv1.Role_ROLE_ACCOUNTANT); err != nil {
		return nil, err
	}
	day, err := s.day(ctx, req.GetDate())
	if err != nil {
		return nil, err
	}
	rewards, fees, err := s.store.DaySums(ctx, day)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &accountingv1.GetStatsResponse{
		Date:     bizday.Format(day),
		Earnings: -(rewards + fees),
		Rewards:  rewards,
		Fees:     fees,
	}, nil
}

// day reads a request's date: empty is the current business day (today in the business
// time zone, or the first open day after it when today was closed early), and no later
// day is accepted.
func (s *Server) day(ctx context.Context, date string) (time.Time, error) {
	current, err := s.store.CurrentDay(ctx, bizday.Of(s.now(), s.loc))
	if err != nil {
		return time.Time{}, s.toStatus(ctx, err)
	}
	day, err := bizday.ParseUpTo(date, current)
	if err != nil {
		return time.Time{}, server.InvalidField("date", fmt.Sprintf("%v in %s", err, s.loc))
	}
	return day, nil
}

// pageToken encodes where the next page starts, bound to the user and the day.
func pageToken(userID uuid.UUID, day time.Time, lastID int64) string {
	raw := fmt.Sprintf("%s/%s/%d", userID, bizday.Format(day), lastID)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// parsePageToken returns the id after which the page starts; 0 for no token.
func parsePageToken(token string, userID uuid.UUID, day time.Time) (int64, error) {
	if token == "" {
		return 0, nil
	}
	bad := server.InvalidField("page_token", "not a token of this date and user_id; start again without it")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, bad
	}
	parts := strings.Split(string(raw), "/")
	if len(parts) != 3 || parts[0] != userID.String() || parts[1] != bizday.Format(day) {
		return 0, bad
	}
	id, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || id <= 0 {
		return 0, bad
	}
	return id, nil
}

// toStatus is the one translation of store errors into gRPC statuses.
func (s *Server) toStatus(ctx context.Context, err error) error {
	if errors.Is(err, pgutil.ErrNotFound) { // the store's only missing row is the user
		return status.Error(codes.NotFound, "user_id: no such user")
	}
	return server.Status(ctx, s.log, err)
}

func balanceProto(b dayBalance) *accountingv1.Balance {
	return &accountingv1.Balance{
		UserId:  b.UserID.String(),
		Date:    bizday.Format(b.Day),
		Opening: b.Opening,
		Rewards: b.Rewards,
		Fees:    b.Fees,
		Closing: b.Closing,
		Payout:  b.Payout,
		Carry:   b.Carry,
		Closed:  b.Closed,
	}
}

var logKinds = map[accountingdb.AuditKind]accountingv1.LogKind{
	accountingdb.AuditKindFee:    accountingv1.LogKind_LOG_KIND_FEE,
	accountingdb.AuditKindPayout: accountingv1.LogKind_LOG_KIND_PAYOUT,
	accountingdb.AuditKindReward: accountingv1.LogKind_LOG_KIND_REWARD,
}

func entryProto(userID uuid.UUID, e entry) *accountingv1.LogEntry {
	out := &accountingv1.LogEntry{
		Id:              strconv.FormatInt(e.ID, 10),
		UserId:          userID.String(),
		TaskDescription: e.TaskDescription,
		Kind:            logKinds[e.Kind],
		Amount:          e.Amount,
		Date:            bizday.Format(e.BusinessDate),
		CreatedAt:       timestamppb.New(e.CreatedAt),
	}
	if e.TaskID.Valid {
		out.TaskId = e.TaskID.UUID.String()
	}
	return out
}
