//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

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
)

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
	return measure(basePG, cfg.concurrency, cfg.baselineDuration, func(ctx context.Context, w, i int) error {
		_, err := s.db.Exec(ctx, "INSERT INTO loadtest_scratch (worker, seq, payload) VALUES ($1, $2, $3)",
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
