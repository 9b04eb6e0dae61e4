// Package broker is the RabbitMQ layer shared by every aTES service: one
// reconnecting connection, the event topology, publishing with publisher
// confirms, and consuming with bounded, delayed retries and a dead-letter queue.
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
// Events go to one durable topic exchange (Config.Exchange, "ates.events" by
// default). Each consuming service owns one queue declared with
// [Conn.DeclareQueue]; for a queue named q the package declares:
//
//   - q: durable, bound to the exchange with each routing key, and bound to the
//     dead-letter exchange "<exchange>.dlx" (durable, direct) with key q. Its
//     own dead-letter target is that exchange with key "q.retry".
//   - q.retry: durable, no consumers, x-message-ttl = RetryDelay, dead-lettering
//     to "<exchange>.dlx" with key q, i.e. back into q.
//   - q.dead: durable dead-letter queue, bound to "<exchange>.dlx" with key
//     "q.dead". Nothing consumes it; operators inspect or replay it.
//
// Queue names must not end in ".retry" or ".dead". The retry delay is a queue
// argument: changing it for an existing queue needs the q.retry queue deleted
// first (RabbitMQ refuses to redeclare a queue with other arguments).
//
// # Retries and the dead-letter queue
//
// A handler error rejects the delivery without requeueing, so RabbitMQ
// dead-letters it into q.retry, where it waits RetryDelay and then expires back
// into q: the retry is delayed, never a hot loop, and it survives restarts. The
// attempt number is 1 + the x-death count RabbitMQ keeps for (q, "rejected");
// once a failed attempt reaches MaxDeliveries, or at once when the handler
// returns a [Permanent] error, the consumer publishes a copy (with confirm) to
// q.dead carrying the reason in the "x-ates-error" header, and only then acks
// the original. Redeliveries caused by a consumer dying before it acked do not
// count as attempts, because RabbitMQ records no x-death for them.
package broker
