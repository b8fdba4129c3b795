// Command relay is the CDC relay of MyScrollr Connect: it streams committed outbox rows from
// PostgreSQL logical replication to Kafka as binary-mode CloudEvents. It is long-running
// (Knative min-scale 1) and never polls the outbox table.
//
// # Pipeline
//
// The relay streams a publication (RELAY_PUBLICATION, default connect_outbox: FOR TABLE outbox,
// publish = 'insert') through a permanent logical replication slot (RELAY_SLOT, default
// connect_relay, plugin pgoutput, protocol version 1). Migration 00004 creates the publication;
// `relay -setup`, run as a Job with the relay's login role (which alone has REPLICATION), creates
// the slot before the functions roll out (docs/decisions/0004-database-roles.md). The relay
// still creates either when it is missing and its role may (local runs, tests). A slot only
// sees transactions that commit after it was created, hence the Job before the first write.
//
// Every INSERT becomes a CloudEvent: id = outbox id; source, type, subject, time, dataschema,
// datacontenttype and specversion from their columns; each member of the extensions jsonb as
// an extension (strings and booleans as they are, integers that fit as integers, anything
// else as its JSON text); partitionkey = aggregateid; data = payload. It is encoded as
// events/kafkace encodes it (binary mode, record key = partitionkey): the record is built
// straight from the column text, byte for byte what the CloudEvents SDK and kafkace.Encode
// make of the row (a differential fuzz test holds the two together) at a tenth of the CPU,
// and Insert messages are decoded in place. It is produced to the row's topic by
// an idempotent franz-go producer with acks=all. The default partitioner hashes the key, so
// one aggregate's events go to one partition, and the idempotent producer keeps the order of
// one partition, which is commit order. UPDATE, DELETE and TRUNCATE of the outbox are not
// events and are ignored. A row that cannot become a valid CloudEvent (possible only when
// something bypasses shared/outbox) is not dropped: it goes to "<topic>.dlq" as a JSON
// document naming the defect, with the platform's dead-letter headers (package events, "Dead
// letters"; knativeerrordest "topic:<topic>"), is logged and counted, and the stream goes on.
//
// # Delivery guarantee
//
// Records are produced asynchronously; the relay tracks transactions in commit order and
// confirms to PostgreSQL (standby status update, flush position) only the end LSN of the
// newest transaction whose records and all earlier ones Kafka has acknowledged. When nothing
// is in flight, the position of a server keepalive is confirmed too, so a quiet outbox in a
// busy database does not hold WAL. Status updates go out as soon as the confirmed position
// moves (at most every 100ms) and every RELAY_STATUS_INTERVAL regardless, asking the server
// to reply, so a silent server is detected. After a crash the slot replays from the confirmed
// position: nothing is lost and a replayed event carries the same CloudEvent id, which
// consumers dedupe on (source, id). A produce error ends the replication session and the
// relay starts again from the confirmed position.
//
// # Failures
//
// The relay reconnects by itself with exponential backoff (with jitter, up to
// RELAY_BACKOFF_MAX) when PostgreSQL goes away; franz-go reconnects to Kafka by itself and
// retries records without limit. At most RELAY_MAX_IN_FLIGHT records are buffered: beyond
// that the relay stops reading the stream (PostgreSQL keeps the WAL) but keeps answering the
// server, so a long Kafka outage does not make the walsender time out. The relay is "stalled"
// when it has no replication stream and is not a standby (below), or when records are waiting
// and nothing was acknowledged for RELAY_STALL_AFTER; /readyz fails while stalled.
//
// # Rolling upgrades: standby and takeover
//
// Only one process can stream from a slot. During a Knative rollout the new revision's pod
// starts while the old one still streams, and the old one is drained and terminated only
// once the new one is ready. Were readiness to require the slot, the new pod could never
// become ready and the rollout would fail. So a relay that finds the slot held by another
// process (active_pid in pg_replication_slots, or START_REPLICATION failing with 55006 "is
// active for PID") is a standby, which is a normal state and not a failure: it is ready, reports
// connect_relay_standby 1, logs that once, counts no reconnect, and tries again every second
// (not the growing reconnect backoff), so it takes over within about a second of the old
// process letting go. It stays ready only while it keeps reaching the database: when its latest
// look at the slot is older than RELAY_STALL_AFTER it is stalled like any relay without a
// stream. Once streaming, the usual stall rules apply.
//
// On SIGTERM the old relay stops reading, waits up to RELAY_DRAIN_TIMEOUT for Kafka to
// acknowledge what it produced, confirms that position and closes the replication connection,
// which releases the slot; this happens at once, while the HTTP server drains its probes in
// parallel. The standby reads the slot's confirmed position after it has acquired the slot (a
// position read before could be older than what the old relay confirmed on its way out) and
// replays from there: records of a transaction whose commit the old relay had not read yet
// come again with the same ids and bytes, nothing is lost. Exclusivity is PostgreSQL's, not
// the scheduler's: a second replica (a rollout, max-scale above 1, a pod that Kubernetes
// thinks is gone but is not) only stands by. A relay killed without draining (SIGKILL, node
// loss) keeps the slot until PostgreSQL's wal_sender_timeout notices; the standby then takes
// over from the last confirmed position. Both relays run the maintenance loop; its deletes
// are idempotent.
//
// # Outbox retention
//
// Logical decoding reads the WAL, not the table, so deleting an outbox row never loses its
// event. Rows are kept as an audit trail and deleted by the relay once they are older than
// RELAY_RETENTION (default 24h, 0 keeps them forever) and older than the commit time of the
// last confirmed transaction, in batches, every RELAY_MAINTAIN_INTERVAL. Debezium's pattern
// (insert and delete in the writing transaction) would also work with this relay.
//
// # Kafka authentication and TLS
//
// On the cluster the relay writes as the Strimzi KafkaUser connect-relay (infra/kafka/20-users.yaml:
// SCRAM-SHA-512, Write and Describe on its topics only) over the TLS listener, like the Kafka
// Broker and the sinks. KAFKA_SASL_MECHANISM (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN) with
// KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD turn SASL on, through franz-go's own sasl/scram and
// sasl/plain; unset, the relay does not authenticate (the local runtime's in-process cluster). A
// mechanism without both credentials, or credentials without a mechanism, is refused rather than
// silently ignored. SCRAM never sends the password, so it is accepted without TLS; PLAIN does,
// so it is refused without TLS unless KAFKA_SASL_ALLOW_PLAINTEXT=true says it is a local test
// cluster.
//
// KAFKA_TLS=true dials the brokers over TLS 1.2 or later (default false: plaintext, the local
// runtime). KAFKA_TLS_CA_FILE, a PEM bundle, turns TLS on by itself and replaces the system roots
// instead of adding to them: a Strimzi cluster's brokers are signed by the cluster's own
// self-signed CA, which is the one issuer to trust for them, and adding it to the system roots
// would let any public CA vouch for the brokers too. Without it the system roots are used (a
// managed Kafka with publicly signed certificates). The file is read once, at start: a bad file
// stops the relay with an error naming it (not found, no certificate, a block that is not a
// certificate). KAFKA_TLS_SERVER_NAME overrides the name checked in the brokers' certificates
// (default: each broker's host as dialed). The CA is renewed by Strimzi; infra/secrets/create.sh
// copies it, and the relay reads it again when it restarts.
//
// The password is a [Secret]: printed with any verb, marshalled or logged it reads "[redacted]",
// and no error the relay makes contains it. franz-go connects lazily, so every session first
// reaches a broker (TCP, TLS, SASL) with a client of the same options, before it takes the slot,
// and so does a relay that finds the slot held: wrong credentials or an untrusted certificate
// end the attempt with the reason logged ("relay session ended; reconnecting"), and the relay is
// not ready ("no replication stream") and never a standby, so a rollout that brings bad
// credentials stops with the old revision still streaming. Nothing is lost meanwhile: the slot
// keeps the WAL, and a relay with the right credentials delivers everything from the confirmed
// position. Failed broker connections (TLS and SASL failures included) are counted in
// connect_relay_reconnects_total{target="kafka"} and logged, once per distinct error a minute.
//
// # Metrics
//
//   - connect_relay_events_total: events acknowledged by Kafka (replays included).
//   - connect_relay_lag_seconds: now minus the commit time of the oldest transaction not yet
//     confirmed, 0 when caught up. (The age of the last confirmed transaction would jump to
//     the length of any quiet period as soon as a new event arrives; the oldest unconfirmed
//     commit is what lag means to a consumer.)
//   - connect_relay_retained_wal_bytes: pg_current_wal_lsn() - confirmed_flush_lsn of the slot.
//   - connect_relay_last_ack_timestamp: Unix time of the last Kafka acknowledgement.
//   - connect_relay_reconnects_total{target="postgres"|"kafka"}: replication sessions started
//     again after a failure; failed Kafka broker connection attempts.
//   - connect_relay_stalled: 1 while stalled, else 0.
//   - connect_relay_standby: 1 while another process holds the slot and this relay waits to
//     take it over, else 0.
//   - connect_relay_invalid_rows_total: rows sent to the dead-letter topic.
//
// # Configuration
//
// See [Config]: DATABASE_URL, KAFKA_BROKERS, the Kafka authentication and TLS settings above
// (KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SASL_ALLOW_PLAINTEXT,
// KAFKA_TLS, KAFKA_TLS_CA_FILE, KAFKA_TLS_SERVER_NAME), RELAY_SLOT, RELAY_PUBLICATION and the
// tuning variables above.
package main
