// Package records is the record pipeline shared by the data paths: poll (pull sources, GET
// /schema and GET /data) now, ingest (push sources) next. It compiles a stream's declared
// JSON Schema, validates records against it, keys them, passes them through the normalizer
// seam, and stores a batch in one transaction.
//
// Decisions:
//
//   - A stream schema is untrusted input. [CompileSchema] bounds it ([MaxSchemaBytes],
//     [MaxSchemaDepth]), compiles it as draft 2020-12 unless its $schema names another
//     built-in draft, asserts formats, and loads nothing: a $ref or $schema naming anything
//     but the built-in metaschemas fails ("remote references are not loaded"), so compiling
//     never touches the network or the file system. Patterns use Go's RE2 engine (linear time).
//   - Every problem is reported, as a [Problem]: a JSON pointer (RFC 6901) and a reason in
//     words, at most [MaxProblems] per record. A record is also refused when it is larger
//     than [MaxRecordBytes], deeper than [MaxRecordDepth], not an object, or holds a NUL
//     character (PostgreSQL's jsonb cannot store \u0000).
//   - Keys: a stream declares the top-level members that key its records (GET /schema
//     "key"); one member gives the key as its value (a non-empty string or an integer), several
//     the JSON array of their values, at most [MaxKeyLen] characters.
//   - The normalizer seam is [Normalizer]; [Identity] returns records unchanged until the WASM
//     host (issue 11) plugs in. A per-record refusal is a [*RecordError] and rejects that
//     record only; any other error fails the batch (nothing stored, the poll is retried).
//   - [Store.Write] runs in the caller's transaction, so a poller can commit its own state
//     with the records: one multi-row upsert (INSERT ... ON CONFLICT DO UPDATE ... WHERE
//     records.data IS DISTINCT FROM EXCLUDED.data RETURNING), so a record stored again with
//     the same data is not announced again; the changed records are announced on connect.data
//     as com.myscrollr.connect.data.received through the outbox (the relay streams the
//     outbox by logical replication: "write through the outbox", docs/decisions/0005), one
//     event per stream and at most [DefaultMaxEventRecords] records or
//     [DefaultMaxEventBytes] of data each; rejections are one row per problem with a sample
//     of the record (at most [MaxSampleBytes]). Good records of a batch are kept when others
//     are bad.
//   - Retention of rejections: each write keeps the integration's newest KeepRejections rows;
//     [PruneRejections] deletes rows older than the retention (the poller calls it each tick).
//
// The pull contracts are schemas/json/pull-schema.json (GET /schema) and
// schemas/json/pull-data.json (GET /data), embedded through package schemas.
// [ParsePullSchema] and [ParsePullData] validate documents against them; a document refused
// as a whole is a [*DocumentError]; problems inside one record of GET /data reject that
// record only ([CheckPull]), with pointers into the record's item ("/stream",
// "/data/price_cents").
package records
