// Package loadtest is aTES's load harness: it runs the real ates binary as one process
// per service against a private PostgreSQL database and RabbitMQ vhost, measures
// same-run baselines of the parts the services are made of (a bare gRPC health check,
// a single-row pgx INSERT, a RabbitMQ publish with confirms), then drives each API
// workload with N concurrent callers for D seconds and prints one table of throughput
// and exact p50/p99 latencies, each workload beside its baseline.
//
// It is behind the loadtest build tag so that `go test ./...` never runs it:
//
//	make loadtest
//	LOADTEST_DURATION=5s LOADTEST_CONCURRENCY=16 make loadtest
//	go test -tags loadtest -count=1 -v -run TestLoad ./services/loadtest
//
// It needs PostgreSQL (TEST_DATABASE_URL), RabbitMQ (TEST_AMQP_URL) with rabbitmqctl on
// this machine (to create a private vhost), and an SMTP server for mailsender
// (TEST_SMTP_ADDR, default 127.0.0.1:1025; no mail is sent during a run).
package loadtest
