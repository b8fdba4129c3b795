// Package events names the CloudEvents of MyScrollr Connect: their types, sources, payloads
// and the Kafka topics they travel on. It has no dependencies beyond the standard library, so
// integration developers can import it to read their lifecycle topic.
//
// Every platform event is a CloudEvents 1.0 event in binary content mode on Kafka (see the
// kafkace package for the binding and the stream package for producers and consumers):
//
//   - type is reverse-DNS, com.myscrollr.connect.<noun>.<verb> (the Type* constants);
//   - source is the function that emitted it, [Source]("install") = "/myscrollr/connect/install";
//   - id is unique per source; consumers dedupe on source+id, since delivery is at least once;
//   - datacontenttype is application/json and data is the payload struct named after the type
//     (TypeInstallCompleted carries [InstallCompleted]); [DataFor] returns an empty payload for
//     a type, for decoding;
//   - the partitionkey extension ([ExtPartitionKey]) is the record key: the integration id on
//     connect.events, so all events of one integration stay in order.
//
// Payload conventions: JSON names are snake_case; Logto user and application ids are strings;
// integration ids are UUID strings; money is amount_cents (int64) plus an ISO 4217 currency in
// lower case, as Stripe writes it; times are RFC 3339.
//
// # Dead letters
//
// An event that cannot be delivered goes to a dead-letter topic (by default [DLQ] of its
// topic) in one shape, whoever gave up on it: the Knative Kafka Broker in a cluster, the local
// dispatcher (infra/local/dispatch) that stands in for it, the Kafka consumer of package stream,
// and the relay for an outbox row that cannot become an event. A dead letter is the event as
// it was delivered, in binary mode (a binary-mode record keeps its key, value and headers, so it
// stays the same event), with the dead-letter extensions added as ce_ headers, replacing any
// earlier ones:
//
//	knativeerrordest  where delivery failed: the subscriber URL, "consumergroup:<group>" or "topic:<topic>"
//	knativeerrorcode  the last HTTP status; absent without an HTTP response
//	knativeerrordata  base64 of at most 1 KiB of the last response body, or of the error text
//	dlqattempts       delivery attempts made; 0 when the record did not decode or could not be built
//	dlqtopic          where the original record was read, when it was read from Kafka
//	dlqpartition        (all three or none)
//	dlqoffset
//
// The first three are Knative's own extension names, so tooling reads both kinds of dead
// letter alike; Knative's carry only those three. [DeadLetter] holds the values;
// [DeadLetter.Extensions] writes them and [ParseDeadLetter] reads them; kafkace.DeadLetter and
// kafkace.ParseDeadLetter do the same on a Kafka record. A record that was not a CloudEvent
// (it did not decode, or the relay's JSON account of a bad row) keeps its value and headers
// and carries the same ce_ headers; it still does not decode as an event, so read it with
// kafkace.ParseDeadLetter, which also reads a structured-mode dead letter (a KafkaSink set to
// structured content mode writes those).
//
// # Permanent failures
//
// A handler returns [Permanent](err) for an event that can never succeed: the HTTP runtime
// answers 400 (so Knative dead-letters it without retrying), the stream consumer dead-letters it
// after that attempt, the Lambda adapter drops it from the batch. Any other error is retried.
package events
