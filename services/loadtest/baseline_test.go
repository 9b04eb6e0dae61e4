//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The baselines: what the parts of a call cost on this machine in this run, with the
// same callers, so that a workload's throughput can be read against them.
const (
	baseGRPC = "grpc_health"
	basePG   = "pg_insert"
	baseAMQP = "amqp_publish_confirm"
	baseCons = "amqp_consume_ack"
)

// baselinePhase measures every baseline.
func baselinePhase(t *testing.T, cfg config, s *system) []result {
	t.Helper()
	out := []result{healthBaseline(t, cfg), pgBaseline(t, cfg, s), amqpBaseline(t, cfg, s), consumeBaseline(t, cfg, s)}
	for i := range out {
		out[i].Kind = "baseline"
	}
	return out
}

// healthBaseline calls grpc.health.v1 Check on a bare grpc.Server in this process.
func healthBaseline(t *testing.T, cfg config) result {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial the health server: %v", err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	return measure(baseGRPC, cfg.concurrency, cfg.baselineDuration, func(ctx context.Context, _, _ int) error {
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	})
}

// pgBaseline inserts single rows through a pgx pool configured as the services' are
// (pgutil.Connect's defaults) into a scratch table of the private database.
func pgBaseline(t *testing.T, cfg config, s *system) result {
	t.Helper()
	ctx := context.Background()
	if _, err := s.db.Exec(ctx, `CREATE TABLE loadtest_scratch (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		worker int NOT NULL,
		seq int NOT NULL,
		payload text NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatalf("create the scratch table: %v", err)
	}
	defer func() { _, _ = s.db.Exec(ctx, "DROP TABLE loadtest_scratch") }()
	// A connection per caller, as pgbench's clients have (up to 32: the services hold
	// connections of their own and the server allows 100), so that the baseline is what
	// PostgreSQL does, with its group commit, not what a small pool lets through.
	pcfg, err := pgxpool.ParseConfig(s.dbURL)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	pcfg.MaxConns = int32(min(cfg.concurrency, 32))
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer pool.Close()
	return measure(basePG, cfg.concurrency, cfg.baselineDuration, func(ctx context.Context, w, i int) error {
		_, err := pool.Exec(ctx, "INSERT INTO loadtest_scratch (worker, seq, payload) VALUES ($1, $2, $3)",
			w, i, "load test row")
		return err
	})
}

// amqpBaseline publishes persistent messages to a durable scratch queue of the private
// vhost, one confirm-mode channel per caller, each publish waiting for its confirm.
func amqpBaseline(t *testing.T, cfg config, s *system) result {
	t.Helper()
	conn, err := amqp.Dial(s.amqpURL)
	if err != nil {
		t.Fatalf("connect to RabbitMQ: %v", err)
	}
	defer conn.Close()
	const queue = "loadtest.scratch"
	chans := make([]*amqp.Channel, cfg.concurrency)
	for i := range chans {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("open channel %d: %v", i, err)
		}
		if err := ch.Confirm(false); err != nil {
			t.Fatalf("confirm mode: %v", err)
		}
		chans[i] = ch
	}
	if _, err := chans[0].QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", queue, err)
	}
	defer func() { _, _ = chans[0].QueueDelete(queue, false, false, false) }()
	body := []byte(`{"load":"test row"}`)
	return measure(baseAMQP, cfg.concurrency, cfg.baselineDuration, func(ctx context.Context, w, _ int) error {
		dc, err := chans[w].PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Timestamp: time.Now(), Body: body,
		})
		if err != nil {
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("broker nacked the publish")
		}
		return nil
	})
}

// consumeBaseline fills a durable scratch queue of the private vhost with
// cfg.consumeMessages persistent messages (published with confirms, not measured), then
// measures cfg.concurrency consumers, one channel each with a prefetch of 32 as
// taskhandler's is of its own prefetch, acking every delivery one by one, until the queue
// is drained or the baseline duration is over. Its req/s is messages acked a second; a
// pre-filled queue has no meaningful per-message latency, so p50 and p99 stay 0.
func consumeBaseline(t *testing.T, cfg config, s *system) result {
	t.Helper()
	conn, err := amqp.Dial(s.amqpURL)
	if err != nil {
		t.Fatalf("connect to RabbitMQ: %v", err)
	}
	defer conn.Close()
	const queue = "loadtest.consume"
	pub, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	if _, err := pub.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", queue, err)
	}
	defer func() { _, _ = pub.QueueDelete(queue, false, false, false) }()
	fill(t, pub, queue, cfg.consumeMessages)

	var (
		acked    atomic.Int64
		errs     atomic.Int64
		firstErr sync.Once
		errText  string
		drained  = make(chan struct{})
		wg       sync.WaitGroup
		stops    []func()
	)
	total := int64(cfg.consumeMessages)
	start := time.Now()
	for i := range cfg.concurrency {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("open consumer channel %d: %v", i, err)
		}
		if err := ch.Qos(32, 0, false); err != nil {
			t.Fatalf("prefetch: %v", err)
		}
		tag := fmt.Sprintf("loadtest-%d", i)
		deliveries, err := ch.Consume(queue, tag, false, false, false, false, nil)
		if err != nil {
			t.Fatalf("consume %s: %v", queue, err)
		}
		defer ch.Close()
		stops = append(stops, func() { _ = ch.Cancel(tag, false) })
		wg.Go(func() {
			for d := range deliveries {
				if err := d.Ack(false); err != nil {
					errs.Add(1)
					firstErr.Do(func() { errText = err.Error() })
					continue
				}
				if acked.Add(1) == total {
					close(drained)
				}
			}
		})
	}
	select {
	case <-drained:
	case <-time.After(cfg.baselineDuration):
	}
	elapsed := time.Since(start)
	n := acked.Load()
	for _, stop := range stops {
		stop() // ends the consumer's deliveries
	}
	wg.Wait()
	return result{
		Name: baseCons, Calls: int(n + errs.Load()), Errors: int(errs.Load()), Seconds: elapsed.Seconds(),
		Throughput: float64(n) / elapsed.Seconds(), FirstError: errText,
		Note: fmt.Sprintf("%d messages pre-filled; no latencies", total),
	}
}

// fill publishes n persistent messages to queue on a confirm-mode channel, waiting for
// every confirm at the end, so that the queue holds all of them.
func fill(t *testing.T, ch *amqp.Channel, queue string, n int) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body := []byte(`{"load":"test row"}`)
	pending := make([]*amqp.DeferredConfirmation, 0, n)
	for range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body,
		})
		if err != nil {
			t.Fatalf("fill %s: %v", queue, err)
		}
		pending = append(pending, dc)
	}
	for _, dc := range pending {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("fill %s: confirm %v, %v", queue, ok, err)
		}
	}
}
