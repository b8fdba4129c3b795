// Package dispatch does locally what Knative Eventing does in a cluster, as configured by the
// manifests in infra/knative (docs/architecture.md): it reads the Broker's Kafka topic and
// delivers the CloudEvents that match each Trigger's filter to the subscriber, delivers the
// records of KafkaSource topics to their sink, and sends PingSource ticks on their cron
// schedule. `make dev` and the end-to-end tests run it next to the functions.
//
// # Delivery
//
// Events are POSTed in binary content mode (CloudEvents HTTP binding, ce-* headers) to the
// subscriber URL: the Resolve function of the Config maps a Service name to its base URL and
// the manifest's relative uri (/events) is appended. Replies follow the Knative Eventing
// data-plane contract:
//
//   - 2xx: delivered.
//   - 404, 408, 409, 429, any 5xx, a transport error or a timeout: retried Delivery.Retry times,
//     waiting Delivery.Backoff(n) before retry n (linear: delay*n; exponential: delay*2^n,
//     so the first retry waits twice the configured delay, as eventing-kafka-broker's
//     dispatcher does), then dead-lettered.
//   - any other status (400, 401, 403, 413, ...; also 1xx and 3xx): dead-lettered at once.
//
// A Trigger's delivery is its own, else its Broker's (knative.Manifests.DeliveryFor). Each
// attempt is bounded by Delivery.Timeout, or DefaultAttemptTimeout when unset. PingSources have
// no delivery spec in Knative; ticks are retried with PingDelivery and then dropped (the next
// tick covers a lost one).
//
// # Dead letters
//
// A dead-lettered event is produced, in binary mode, to the Kafka topic of the delivery's
// dead-letter sink (a KafkaSink of the manifests), or to "<topic>.dlq" when none is
// configured, in the platform's one dead-letter shape (package events, "Dead letters"). As
// Knative does, it carries knativeerrordest (the subscriber URL), knativeerrorcode (the last
// HTTP status, absent when there was no response) and knativeerrordata (base64 of the first
// 1 KiB of the last response body, or of the transport error text); it adds dlqattempts (the
// attempts made). A dead-letter sink that is a Service is delivered over HTTP, once.
//
// # Offsets, ordering, concurrency
//
// Each Trigger has its own consumer group (knative-trigger-<namespace>-<name>, as the Kafka
// Broker names them); a KafkaSource uses its consumerGroup. Delivery is unordered: up to
// Config.MaxInFlight events per Trigger are in flight at once. Offsets are committed manually
// and only past events that are done (delivered, filtered out or dead-lettered): per partition
// the dispatcher keeps the polled offsets in order and commits the end of the contiguous done
// prefix, so an event that completes early never lets a commit skip a slower one. When the
// dispatcher stops, in-flight deliveries are abandoned and not committed; they are delivered
// again on restart (at least once; functions dedupe on source+id). When a partition is revoked
// in a rebalance, its done prefix is committed and late completions are ignored.
//
// Trigger consumer groups start from the earliest offset when they have no committed offset,
// so a fresh local cluster loses nothing that was written before the dispatcher started; a
// KafkaSource starts where its initialOffset says.
//
// Records on the Broker topic that are not valid CloudEvents are logged and skipped (the
// relay writes the topic through the events package, which only encodes valid events). A
// KafkaSource record is decoded as a CloudEvent when it has a ce_specversion header; otherwise,
// or when that fails, it is wrapped as a dev.knative.kafka.event (see KafkaEvent). Either way
// the source's spec.ceOverrides.extensions are then set on the event, replacing what the
// producer wrote, as Knative does: ingest trusts its pushintegration extension because of it.
package dispatch
