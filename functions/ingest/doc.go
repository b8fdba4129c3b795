// Command ingest accepts records pushed by push data sources, as CloudEvents, validates them
// against the stream schemas their manifest version declares, normalizes them (the records
// normalizer seam: the push source's WASM transform, shared/wasmnorm, once per request for its
// valid records; records.Identity when it has none) and stores them in the
// records table, whose changes reach connect.data through the outbox as poll's do.
//
// # Routes
//
//	POST /v1/ingest   push records (data:write of a push source's integration client): 200 or 207 with a result per event
//	POST /events      the KafkaSource of integrations.{name}.data, and the replay-key pruning tick (PingSource)
//
// Two ways in, one pipeline (Service.accept):
//
//   - POST /v1/ingest: structured (application/cloudevents+json), binary (ce-* headers) or
//     batched (application/cloudevents-batch+json) mode. The body is bounded
//     (INGEST_MAX_BODY_BYTES, 413) before anything is parsed, a batch by INGEST_MAX_BATCH.
//     The token must carry data:write and its client_id must be the integration client of a
//     push data source (integrations.m2m_app_id, made by the registry): the token names the
//     integration, so a token of another client is refused 403. Each event gets a result (stored, duplicate, or
//     refused with JSON pointers into the event and reasons); the answer is 200 when none was
//     refused, 207 otherwise, so a partly bad batch keeps its good events.
//   - POST /events: the KafkaSource of an integration's topic integrations.{name}.data
//     delivers what the integration produced there (binary Kafka binding). The topic is the
//     authority: the KafkaSource's ceOverrides set the extension pushintegration to the
//     integration's name (one KafkaSource per push topic; an override wins over whatever the
//     producer wrote). A refused event is permanent (dead letter), a stored or duplicate one
//     done, a database failure retried.
//
// The convention of a pushed record: type com.myscrollr.connect.record.pushed, subject the
// stream, data the record (a JSON object; datacontenttype application/json or absent), time
// when the source observed it (optional), extension user the Logto user id it is about
// (optional); source and id are the integration's own and together the replay key: an event
// whose (source, id) was stored within INGEST_REPLAY_RETENTION is a duplicate and stored no
// second time (table ingest_events, in the same transaction as the records).
//
// Rate limit: a token bucket per integration (INGEST_RATE events/s, INGEST_BURST), one token
// per event, kept in the replica's memory; a request the bucket cannot pay for is refused
// whole with 429 and Retry-After (seconds), before its body is read when the bucket is empty.
// With n replicas an integration may get n times the rate; the gateway's per-client_id limit
// is the global bound.
//
// Replay keys are pruned by a PingSource tick on /events (type dev.knative.sources.ping, data
// {"job":"ingest-prune"}; prune.go): the keys older than INGEST_REPLAY_RETENTION are deleted in
// batches. An event with the pushintegration extension is never a tick, whatever its type.
//
// # Throughput
//
// BenchmarkIngestBatch500 (one request at a time) and BenchmarkIngestBatch500Concurrent (four
// per P) push HTTP batches of 500 new records end to end, with records.Identity, against the
// throwaway test cluster (shared/pgcluster: fsync=off, synchronous_commit=on; production keeps
// PostgreSQL's defaults, fsync=on and synchronous_commit=on). On the shared 2-core development
// machine they measured 4,800 to 11,300 records/s depending on its load (load average 4 to
// 8), concurrency adding nothing there (both cores were busy), with 48 to 77 µs of Go CPU per
// record (the target is 50,000 records/s: 40 µs of CPU for Go and PostgreSQL together). Where one
// record's time goes (Go CPU profile, and the statements timed one by one): the strict
// structured-event decoder (events/kafkace) about 28 % of the Go CPU, validating the record
// (records.Check, jsonschema) 16 %, the data.received announcement (encoding and its
// validation against the event's JSON Schema in shared/outbox) 17 %; in PostgreSQL, the
// replay-key insert and the upsert about 50 µs per record together, the outbox row and the
// commit the rest. Tried and not kept: folding the replay-key insert into the upsert as one
// CTE measured no faster (58 against 53 µs per record, 100 interleaved batches: the join
// and DISTINCT ON it needs cost what the saved round trip gains); COPY does not fit (both
// writes need ON CONFLICT, and a staging table adds statements); synchronous_commit=off would
// only save the commit's WAL write, already cheap with fsync off.
//
// Refused events are also written to record_rejections (delivery_mode push), where the
// developer reads them.
package main
