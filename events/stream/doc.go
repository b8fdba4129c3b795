// Package stream produces and consumes CloudEvents on Kafka with franz-go, at least once.
//
// # Producing
//
// [NewProducer] builds an idempotent producer (franz-go's default idempotence, acks from all
// in-sync replicas). [Producer.Produce] encodes the event in binary content mode (package
// kafkace), keys the record by the event's partitionkey extension and waits for the
// acknowledgement, so a nil error means the event is durable in Kafka.
//
// # Consuming
//
// [Consume] runs a group consumer that calls a [Handler] for each event and commits an offset
// only after the record it covers is done: the handler returned nil, or the record was written
// to the dead-letter topic. The design:
//
//   - Auto-commit is disabled and rebalances are blocked while a polled batch is being handled
//     (kgo.DisableAutoCommit, kgo.BlockRebalanceOnPoll). Records are handled one at a time in
//     offset order; after the batch the offsets of the records that are done are committed
//     synchronously (CommitRecords), and only then is the rebalance allowed. So a partition is
//     never revoked while it has handled-but-uncommitted records; OnPartitionsRevoked still
//     commits whatever is done, as a safety net (and for shutdown).
//   - On shutdown (ctx cancelled) the consumer stops at the record in hand, commits what is
//     done with a fresh bounded context, leaves the group and returns nil. The interrupted
//     record is not committed and is delivered again to the next member: at least once.
//     Handlers must therefore be idempotent (dedupe on source+id).
//   - A record that does not decode as a CloudEvent is poison: it goes to the dead-letter topic
//     at once, without calling the handler.
//   - A handler error is retried, after Backoff(attempt), up to MaxAttempts calls in all; then
//     the record goes to the dead-letter topic. An error marked [events.Permanent] (or any error
//     with a `Permanent() bool` method returning true) goes there after the first attempt. A handler
//     panic counts as a failed attempt.
//   - If the dead-letter write fails, Consume returns the error without committing the record:
//     the process should exit and be restarted, and the record will be read again. Nothing is
//     lost silently.
//   - Retries block the partition, and the whole batch, while they wait: keep MaxAttempts times
//     the backoff well below the group's rebalance timeout (kgo default 60 s).
//
// # Dead letters
//
// A dead letter has the platform's one shape (see "Dead letters" in package events, written by
// kafkace.DeadLetter): the original record (same key, value and headers, so a binary-mode event
// stays the same event) with the dead-letter extensions as ce_ headers. Here knativeerrordest
// is [events.DestGroup] of the consumer group, knativeerrordata the handler's (or the decoder's)
// error text, knativeerrorcode is absent (there is no HTTP), dlqattempts counts handler calls
// (0 for a record that did not decode) and dlqtopic, dlqpartition, dlqoffset say where the
// record was read.
//
// The dead-letter topic of a topic is [events.DLQ] (topic + ".dlq") unless
// ConsumerConfig.DLQTopic says otherwise. Topics are not created here; create them (and the
// dead-letter topics) with the platform's topic configuration.
package stream
