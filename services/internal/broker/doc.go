// Package broker is the RabbitMQ layer shared by every aTES service: one
// reconnecting connection, the event topology, publishing with publisher
// confirms, and consuming through one middleware with delayed retries, a circuit
// breaker and a dead-letter queue.
//
// # Connection
//
// [Dial] opens the connection; a background goroutine watches it and, when it
// is lost, reconnects at once and then with exponential backoff and jitter,
// re-declares every exchange and queue declared through the [Conn], reopens the
// publisher's confirm channel on first use and lets running consumers
// re-subscribe. Short heartbeats and a handshake timeout notice a hung broker
// within seconds.
//
// # Publishing
//
// [Conn.Publish] waits for the broker's confirm at most Config.ConfirmTimeout
// and, when it fails, says what became of the message: [ErrNotSent] (it never
// reached the broker, e.g. at once while disconnected; nothing will happen) or
// [ErrOutcomeUnknown] (sent, not confirmed; it may be delivered, so send it
// again only under the same event id). Nothing is buffered or dropped
// silently. [Conn.Check] fails while the connection is down or publishes time
// out, for readiness probes.
//
// # Topology
//
// Events go to one durable topic exchange (Config.Exchange, "ates.events" by default).
// Each consuming service owns one queue declared with [Conn.DeclareQueue]; for a queue
// named q the package declares three quorum queues (RabbitMQ's replicated, durable
// type), all bound to the dead-letter exchange "<exchange>.dlx" (direct) under their own
// names:
//
//   - q, bound to the exchange with each routing key. RabbitMQ itself dead-letters a
//     message from it only when it was handed out QueueSpec.DeliveryLimit times without
//     being settled (a poison message that kills its consumer), straight into q.dead.
//   - q.retry: nothing consumes it. A consumer republishes a failed message there with a
//     per-message expiration; it expires back into q.
//   - q.dead, bounded by QueueSpec.DeadLetterMax: messages that can never be applied,
//     kept until an operator lists, replays or purges them (ates dlq).
//
// Dead-lettering between them is at-least-once, so nothing is lost on the way. Queue
// names must not end in ".retry" or ".dead".
//
// # Users and signatures
//
// Each service may connect as its own user with only the permissions it needs ([Grant],
// rendered with the topology by [Definitions] and imported by [ImportDefinitions]). A
// user that may not declare the exchanges or a queue checks passively that they exist.
// A publish the user may not make fails with an error for which [IsAccessRefused] holds.
// A producer with Config.Signer signs each event ([Keyring]: HMAC-SHA-256 over type, id
// and body, in the [HeaderSignature] header); a consumer with ConsumerConfig.Verify
// dead-letters, unread, every event its producer did not sign ([ErrUnverified]).
//
// # Consuming
//
// [Conn.Consume] runs every delivery through one middleware: route by routing key
// ([On] binds a key to a typed handler) → decode → validate (protovalidate) → handle
// under a per-event timeout → classify ([IsPermanent]) → settle. A permanent error
// dead-letters the message at once with the reason in the "x-ates-error" header. Any
// other error is transient and never dead-letters, however long it lasts: it is retried
// in process a few times, then through q.retry with a capped, jittered delay. A
// transient error also asks the consumer's probe whether its database is down; if it
// is, a circuit breaker stops the consumer taking deliveries until the probe answers.
// Retry and dead-letter copies are published with a confirm before the original is
// acknowledged, so a crash in between delivers the event twice, never zero times:
// handlers dedupe on the event id.
package broker
