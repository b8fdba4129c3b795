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
//     done, a database failure retried; a failure of the integration's transform is retried
//     once and permanent when the same input fails again (traps.go).
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
// throwaway test cluster (shared/pgcluster: fsync=off, full_page_writes=off,
// synchronous_commit=on; production keeps PostgreSQL's defaults, fsync=on and
// synchronous_commit=on); go-cpu-µs/record is this process's CPU (the service, and the test's
// client and identity server), not PostgreSQL's. The machine is a shared 2-core one, so
// figures are medians of three runs of each, the old and the new build interleaved (load
// average 6 to 8 while they ran):
//
//	                          before (b690e10)             after
//	one request at a time     10,654 records/s, 48.9 µs    15,044 records/s, 29.3 µs
//	four per P                10,730 records/s, 48.5 µs    18,443 records/s, 26.5 µs
//
// (single runs ranged 10,188 to 12,461 and 7,896 to 18,455 before, 14,401 to 18,133 and
// 15,196 to 21,871 after.) With the AssemblyScript quotes transform
// (BenchmarkIngestBatch500Transform, one run, load 5): 14,311 records/s without it, 13,245
// in process isolation and 12,006 in-process. The targets (50,000 and 20,000 records/s) are
// not reached on this machine: at 15,000 records/s a record costs 66 µs of wall time, about
// 30 µs of it Go CPU and most of the rest PostgreSQL. Timed statement by statement (batches
// of 500 new records, load 3 to 5): the replay-key insert 11 to 14 µs per record, the
// records upsert 17 to 21, the data.received outbox row (about 60 KB of jsonb) 11 to 13, the
// commit 2 to 3. Not explained yet: in a transaction that writes several such batches, the
// second Store.Write took about three times as long as the first and the later ones.
//
// What made the Go side cheaper (CPU profiles before and after): decoding (28 % of the Go
// CPU before) goes through kafkace's fast path for structured JSON events
// (Decoder.DecodeStructuredJSON: one pass, no reflection, falling back to the strict decoder
// for anything unusual; the same decisions and events, checked by a differential fuzz test),
// and a batch is split in place after one json.Valid instead of unmarshalled into raw
// messages; the data.received announcement (17 %) is built from typed values and checked
// against its JSON Schema by Go code proven equal to the schema (shared/records received.go,
// outbox.SchemaChecked) instead of re-parsing 500 records for the validator; records.Check
// with Identity no longer re-validates the record it just validated. What is left, in the
// order of its cost: validating each record against its stream's schema (parsing it into
// Go values for jsonschema, then the schema walk: about a quarter of the Go CPU), decoding
// (about a sixth), the store (about a tenth, half of it the outbox). PostgreSQL does one
// statement per batch for the replay keys and one for the upsert (INSERT ... SELECT FROM
// unnest of arrays ... ON CONFLICT, using the primary keys of ingest_events and records; no
// further index is needed, and ingest_events_age_idx is what pruning needs). Tried and not
// kept: folding the replay-key insert into the upsert as one CTE measured no faster (58
// against 53 µs per record, 100 interleaved batches: the join and DISTINCT ON it needs cost
// what the saved round trip gains); COPY does not fit (both writes need ON CONFLICT, and a
// staging table adds statements); synchronous_commit=off would only save the commit's WAL
// write, already cheap with fsync off.
//
// Refused events are also written to record_rejections (delivery_mode push), where the
// developer reads them.
package main
