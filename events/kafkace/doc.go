// Package kafkace is the CloudEvents Kafka protocol binding for franz-go records.
//
// It follows the CloudEvents Kafka protocol binding (1.0.3-wip text, shared/contracts/cloudevents):
//
//   - [Encode] writes binary content mode: every context attribute and extension becomes a
//     `ce_<name>` header holding its canonical string form (times as RFC 3339 in UTC with as many
//     fractional digits as needed, integers in decimal, booleans "true"/"false", binary as
//     standard base64, URIs as text). `datacontenttype` goes in the `content-type` header and the
//     event data is the record value as-is; an event without data is a record without value (a
//     tombstone on compacted topics). The record key is the `partitionkey` extension when the
//     event has one (the opt-in key mapper of the binding, section 3.1); the extension is still
//     sent as `ce_partitionkey` because a key mapper must not modify the event. The topic is left
//     empty for the caller.
//   - [Decode] reads both content modes. A `content-type` header starting (case-insensitively)
//     with `application/cloudevents` selects structured mode; only the JSON event format
//     (`application/cloudevents+json`) is supported and batches
//     (`application/cloudevents-batch`) are rejected, since the Kafka binding has no batch mode.
//     Anything else is binary mode. When the event has no `partitionkey` attribute, a non-empty
//     record key that is a valid CloudEvents string becomes its `partitionkey` extension.
//   - [Decoder.DecodeStructuredJSON] decodes a structured JSON event given as bytes (HTTP ingest,
//     batches of them) with the same decisions and events as Decode, through a fast path for
//     the common shape that leaves every doubt to the strict decoder.
//
// Decoding treats the record as untrusted input: the value and the headers are bounded before
// anything is parsed ([DefaultMaxValueBytes], [DefaultMaxHeaderBytes], [DefaultMaxHeaders], or
// a [Decoder] with other limits), and every defect (missing or empty required attribute,
// specversion other than 1.0, malformed time or URI, duplicate header, invalid attribute name,
// invalid UTF-8 or control characters in a string) is reported as a [*DecodeError] naming the
// attribute and the reason. Decode never panics; FuzzDecode checks this and that whatever
// decodes re-encodes to an equal event.
//
// Binary mode carries no type information, so extension values decoded from binary records are
// strings (their canonical form); use the cloudevents types package (types.ToInteger,
// types.ToBool, ...) to read them as other types. Extensions decoded from structured JSON keep
// their JSON type (string, int32 or bool). Attribute names must be lower-case ASCII letters
// and digits, as CloudEvents 1.0 requires; `ce_` headers with other names are rejected rather
// than silently lower-cased.
package kafkace
