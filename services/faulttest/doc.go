// Package faulttest is aTES's fault suite: it runs the real ates binary as one process
// per service against a private PostgreSQL database, RabbitMQ vhost and Mailpit, puts
// an in-process Toxiproxy between the services and those three, injects one fault per
// scenario (broker cut or hang, database cut or latency, SIGKILLs, replicas) while a
// load generator writes through the gRPC API, and then checks from SQL that every
// acknowledged write was applied exactly once and the money adds up.
//
// It is behind the faulttest build tag so that `go test ./...` never runs it:
//
//	make faulttest
//	make faulttest FAULTS=broker_cut
//	go test -tags faulttest -run 'TestFaults/broker_cut' ./services/faulttest -v
//
// It needs PostgreSQL (TEST_DATABASE_URL), RabbitMQ (TEST_AMQP_URL) with rabbitmqctl on
// this machine (to create a private vhost) and installs Mailpit with go install if it is
// missing.
package faulttest
