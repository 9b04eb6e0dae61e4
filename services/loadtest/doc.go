// Package loadtest is aTES's load harness: it runs the real ates binary as one process
// per service against a private PostgreSQL database and RabbitMQ vhost and runs its
// phases in order: same-run baselines of the parts the services are made of (a bare gRPC
// health check, a single-row pgx INSERT, a RabbitMQ publish with confirms, consume+ack),
// the write workloads with N concurrent callers for D seconds, the cost of
// authentication, the seeding of a large day by SQL (Seed, checked by `ates verify`),
// and every accounting and analytics read on it with 1 and 64 callers. It prints one
// table of throughput and exact p50/p99 latencies, each row beside its baseline and the
// issue's goal for it, and writes it as JSON.
//
// It is behind the loadtest build tag so that `go test ./...` never runs it:
//
//	make loadtest
//	LOADTEST_DURATION=5s LOADTEST_CONCURRENCY=16 make loadtest
//	make loadsmoke   # LOADTEST_SMOKE=1: every phase at a tiny size, part of make test
//
// It needs PostgreSQL (TEST_DATABASE_URL, as a superuser: seeding turns triggers off),
// RabbitMQ (TEST_AMQP_URL) with rabbitmqctl on this machine (to create a private vhost),
// and an SMTP server for mailsender (TEST_SMTP_ADDR, default 127.0.0.1:1025; no mail is
// sent during a run).
package loadtest
