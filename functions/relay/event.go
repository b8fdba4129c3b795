package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
)

// Limits on what one outbox row may carry. Kafka's default message limit is 1 MiB; the data
// and the headers must fit under it.
const (
	maxPayloadBytes    = 900 << 10
	maxExtensionsBytes = 32 << 10
	maxAttributeBytes  = 4 << 10
	maxExtensions      = 32
)

// fallbackDLQ receives rows whose topic itself is unusable.
const fallbackDLQ = "connect.relay.dlq"

// The outbox columns the relay reads, as indexes into relation.idx.
const (
	colID = iota
	colAggregateID
	colType
	colSource
	colSpecVersion
	colDataContentType
	colDataSchema
	colSubject
	colTime
	colTopic
	colExtensions
	colPayload
	numCols
)

var colNames = [numCols]string{"id", "aggregateid", "type", "source", "specversion", "datacontenttype",
	"dataschema", "subject", "time", "topic", "extensions", "payload"}

// relation is the column layout of a table, as pgoutput announced it in a Relation message.
type relation struct {
	namespace, name string
	names           []string
	idx             [numCols]int // position of each column the relay reads; -1 when missing
}

func newRelation(namespace, name string, names []string) *relation {
	rel := &relation{namespace: namespace, name: name, names: names}
	for c := range rel.idx {
		rel.idx[c] = slices.Index(names, colNames[c])
	}
	return rel
}

func relationOf(m *pglogrepl.RelationMessage) *relation {
	names := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		names[i] = c.Name
	}
	return newRelation(m.Namespace, m.RelationName, names)
}

// row is one outbox INSERT as text columns, the way pgoutput sends it. The values may point
// into the replication message (decodeInsert): they are valid until the next message is
// read, and whatever is kept (the Kafka record) is copied out of them.
type row struct {
	rel  *relation
	vals [][]byte
	null []bool
}

// get is the value of column c; nil when the column is missing or NULL.
func (r *row) get(c int) []byte {
	if r.rel == nil {
		return nil
	}
	if i := r.rel.idx[c]; i >= 0 && !r.null[i] {
		return r.vals[i]
	}
	return nil
}

func (r *row) isNull(c int) bool {
	if r.rel == nil {
		return true
	}
	i := r.rel.idx[c]
	return i < 0 || r.null[i]
}

// errMalformed marks a pgoutput message that does not follow the protocol: the stream is
// unusable, unlike a well-formed row that is not a valid event.
var errMalformed = errors.New("malformed pgoutput message")

// decodeInsert reads the body of a pgoutput Insert message (after the 'I') into r, reusing
// its slices; rel looks up the relation by id. Values point into src. A tuple that does not
// fit the relation is a *rowError (the row goes to the dead-letter topic); a message that
// cannot be read is errMalformed.
func decodeInsert(src []byte, rel func(uint32) (*relation, bool), r *row) error {
	r.rel, r.vals, r.null = nil, r.vals[:0], r.null[:0]
	if len(src) < 7 {
		return fmt.Errorf("%w: insert of %d bytes", errMalformed, len(src))
	}
	id := binary.BigEndian.Uint32(src)
	if src[4] != 'N' {
		return fmt.Errorf("%w: insert tuple marker %q, want 'N'", errMalformed, src[4])
	}
	rl, ok := rel(id)
	if !ok {
		return fmt.Errorf("%w: insert into unknown relation %d", errMalformed, id)
	}
	n := int(binary.BigEndian.Uint16(src[5:]))
	p := src[7:]
	var bad *rowError
	for i := range n {
		if len(p) < 1 {
			return fmt.Errorf("%w: tuple ends at column %d of %d", errMalformed, i, n)
		}
		kind := p[0]
		p = p[1:]
		var v []byte
		null := false
		switch kind {
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
			null = true
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if len(p) < 4 {
				return fmt.Errorf("%w: column %d length cut off", errMalformed, i)
			}
			l := binary.BigEndian.Uint32(p)
			if uint64(l) > uint64(len(p)-4) {
				return fmt.Errorf("%w: column %d claims %d bytes, %d left", errMalformed, i, l, len(p)-4)
			}
			v, p = p[4:4+l:4+l], p[4+l:]
		default:
			return fmt.Errorf("%w: column %d has unknown kind %q", errMalformed, i, kind)
		}
		if kind != pglogrepl.TupleDataTypeText && kind != pglogrepl.TupleDataTypeNull && bad == nil {
			name := strconv.Itoa(i)
			if i < len(rl.names) {
				name = rl.names[i]
			}
			bad = &rowError{Column: name, Reason: fmt.Sprintf("unexpected tuple data kind %q", kind)}
		}
		r.vals = append(r.vals, v)
		r.null = append(r.null, null)
	}
	if n != len(rl.names) {
		r.vals, r.null = r.vals[:0], r.null[:0]
		return &rowError{Column: "tuple", Reason: fmt.Sprintf("tuple has %d columns, relation %s.%s has %d", n, rl.namespace, rl.name, len(rl.names))}
	}
	if bad != nil {
		r.vals, r.null = r.vals[:0], r.null[:0]
		return bad
	}
	r.rel = rl
	return nil
}

// rowError says which column of a row is unusable and why.
type rowError struct {
	Column string
	Reason string
}

func (e *rowError) Error() string { return "outbox column " + e.Column + ": " + e.Reason }

// validTopic reports whether s is a Kafka topic name: 1-249 of [a-zA-Z0-9._-], not . or ..
func validTopic(s []byte) bool {
	if len(s) == 0 || len(s) > 249 || string(s) == "." || string(s) == ".." {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// decoder turns rows into Kafka records. It is used by one goroutine at a time.
//
// The record is built straight from the column text, the way events/kafkace.Encode would
// encode the CloudEvent the row describes (built with the CloudEvents SDK: its setters trim,
// parse URIs and validate), byte for byte; TestRecordMatchesKafkaceEncode and
// FuzzRecordMatchesKafkaceEncode hold the two to that. Building an SDK event first cost
// about ten times more CPU per event (allocations, URI parsing, validation twice).
type decoder struct {
	types *pgtype.Map
	uris  map[string]uriResult // source and dataschema values seen recently
	media map[string]string    // content types seen recently: "" or why they do not parse
	hdrs  []attr               // scratch
	exts  []attr               // scratch
	text  []byte               // scratch for formatted values
}

// attr is one record header under construction.
type attr struct {
	key string
	val []byte
}

// uriResult is url.Parse(s) as the CloudEvents SDK uses it: the re-serialised text, whether
// the URI is absolute, or why it does not parse.
type uriResult struct {
	text []byte
	abs  bool
	err  string
}

// maxURICache bounds the URI and media type caches; outbox sources, schemas and content types
// are a handful of constants.
const maxURICache = 1024

func newDecoder() *decoder {
	return &decoder{types: pgtype.NewMap(), uris: make(map[string]uriResult), media: make(map[string]string)}
}

func (d *decoder) uri(b []byte) uriResult {
	if u, ok := d.uris[string(b)]; ok {
		return u
	}
	var res uriResult
	if u, err := url.Parse(string(b)); err != nil {
		res.err = err.Error()
	} else {
		res.text, res.abs = []byte(u.String()), u.IsAbs()
	}
	if len(d.uris) >= maxURICache {
		clear(d.uris)
	}
	d.uris[string(b)] = res
	return res
}

// mediaType is why ct is not an RFC 2046 media type, or "".
func (d *decoder) mediaType(ct []byte) string {
	if reason, ok := d.media[string(ct)]; ok {
		return reason
	}
	reason := ""
	if _, _, err := mime.ParseMediaType(string(ct)); err != nil {
		reason = err.Error()
	}
	if len(d.media) >= maxURICache {
		clear(d.media)
	}
	d.media[string(ct)] = reason
	return reason
}

// record turns r into the Kafka record to produce: the event, or a dead letter naming the
// defect. dead reports the latter. The record owns its bytes.
func (d *decoder) record(r *row) (rec *kgo.Record, dead bool, err error) {
	rec, err = d.event(r)
	if err != nil {
		return deadLetter(r, err), true, err
	}
	return rec, false, nil
}

// event builds the binary-mode CloudEvent record of r. Every error is a *rowError.
func (d *decoder) event(r *row) (*kgo.Record, error) {
	fail := func(col, format string, args ...any) (*kgo.Record, error) {
		return nil, &rowError{Column: col, Reason: fmt.Sprintf(format, args...)}
	}
	for _, c := range [...]int{colID, colAggregateID, colType, colSource, colSpecVersion, colDataContentType, colDataSchema, colSubject, colTime, colTopic} {
		if n := len(r.get(c)); n > maxAttributeBytes {
			return fail(colNames[c], "%d bytes exceeds the limit of %d", n, maxAttributeBytes)
		}
	}
	for _, c := range [...]int{colID, colAggregateID, colType, colSource, colTime, colTopic} {
		if len(r.get(c)) == 0 {
			return fail(colNames[c], "missing or empty")
		}
	}
	topic := r.get(colTopic)
	if !validTopic(topic) {
		return fail("topic", "%q is not a valid Kafka topic name", topic)
	}
	if sv := r.get(colSpecVersion); len(sv) > 0 && string(sv) != "1.0" {
		return fail("specversion", "%q is not supported, only 1.0", sv)
	}
	t, ok := parseTimestamptz(r.get(colTime))
	if !ok {
		if err := d.types.Scan(pgtype.TimestamptzOID, pgtype.TextFormatCode, r.get(colTime), &t); err != nil {
			return fail("time", "%q is not a timestamp", r.get(colTime))
		}
	}

	// The context attributes, as the SDK's setters would hold them; invalid says why the
	// SDK would reject the event (reported after the column checks below, as it was).
	var invalid string
	note := func(format string, args ...any) {
		if invalid == "" {
			invalid = fmt.Sprintf(format, args...)
		}
	}
	hs := d.hdrs[:0]
	hs = append(hs, attr{"ce_specversion", specVersion})
	id := bytes.TrimSpace(r.get(colID))
	if len(id) == 0 {
		note("id: MUST be a non-empty string")
	}
	hs = append(hs, attr{"ce_id", id})
	src := d.uri(r.get(colSource))
	switch {
	case src.err != "":
		note("source: %s", src.err)
	case len(bytes.TrimSpace(src.text)) == 0:
		note("source: REQUIRED")
	}
	hs = append(hs, attr{"ce_source", src.text})
	typ := bytes.TrimSpace(r.get(colType))
	if len(typ) == 0 {
		note("type: MUST be a non-empty string")
	}
	hs = append(hs, attr{"ce_type", typ})
	if s := bytes.TrimSpace(r.get(colSubject)); len(s) > 0 {
		hs = append(hs, attr{"ce_subject", s})
	}
	if s := bytes.TrimSpace(r.get(colDataSchema)); len(s) > 0 {
		u := d.uri(s)
		switch {
		case u.err != "":
			note("dataschema: %s", u.err)
		case !u.abs:
			note("dataschema: if present, MUST adhere to the format specified in RFC 3986, Section 4.3. Absolute URI")
		}
		hs = append(hs, attr{"ce_dataschema", u.text})
	}
	d.text = d.text[:0]
	if t = t.UTC(); !t.IsZero() {
		d.text = t.AppendFormat(d.text, time.RFC3339Nano)
		hs = append(hs, attr{"ce_time", d.text})
	}

	exts := d.exts[:0]
	if ext := r.get(colExtensions); len(ext) > 0 {
		if len(ext) > maxExtensionsBytes {
			return fail("extensions", "%d bytes exceeds the limit of %d", len(ext), maxExtensionsBytes)
		}
		var err error
		if exts, err = appendExtensions(exts, ext, note); err != nil {
			return fail("extensions", "%v", err)
		}
	}
	exts = append(exts, attr{"ce_" + kafkace.ExtPartitionKey, r.get(colAggregateID)})
	slices.SortFunc(exts, func(a, b attr) int { return strings.Compare(a.key, b.key) })
	hs = append(hs, exts...)
	d.exts = exts

	ct := r.get(colDataContentType)
	if len(ct) == 0 {
		ct = applicationJSON
	}
	if ct = bytes.TrimSpace(ct); len(ct) > 0 {
		if reason := d.mediaType(ct); reason != "" {
			note("datacontenttype: failed to parse RFC 2046 media type %s", reason)
		}
		hs = append(hs, attr{kafkace.HeaderContentType, ct})
	}
	var value []byte
	if !r.isNull(colPayload) {
		value = r.get(colPayload)
		if len(value) > maxPayloadBytes {
			return fail("payload", "%d bytes exceeds the limit of %d", len(value), maxPayloadBytes)
		}
	}
	d.hdrs = hs
	if invalid != "" {
		return fail("event", "%s", invalid)
	}
	for _, h := range hs {
		if reason := kafkace.CheckString(h.val); reason != "" {
			name := strings.TrimPrefix(h.key, "ce_")
			if h.key == kafkace.HeaderContentType {
				name = "datacontenttype"
			}
			return fail("event", "attribute %q: %s", name, reason)
		}
	}

	// One buffer holds the topic, key, header values and value; one slice the headers.
	size := len(topic) + len(value)
	for _, h := range hs {
		size += len(h.val)
	}
	buf := make([]byte, 0, size)
	take := func(b []byte) []byte {
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)] // capped: appending to one cannot clobber the next
	}
	rec := &kgo.Record{Topic: string(topic), Headers: make([]kgo.RecordHeader, len(hs))}
	for i, h := range hs {
		rec.Headers[i] = kgo.RecordHeader{Key: h.key, Value: take(h.val)}
		if h.key == "ce_"+kafkace.ExtPartitionKey {
			rec.Key = rec.Headers[i].Value
		}
	}
	if len(value) > 0 {
		rec.Value = take(value)
	}
	return rec, nil
}

var (
	specVersion     = []byte("1.0")
	applicationJSON = []byte("application/json")
)

// specAttributes may not be extension names (the SDK refuses to overwrite them).
var specAttributes = map[string]bool{"id": true, "source": true, "type": true, "datacontenttype": true,
	"subject": true, "time": true, "specversion": true, "dataschema": true}

// appendExtensions appends the members of the extensions object as headers: strings and
// booleans as they are, integers that fit in 32 bits in canonical form, anything else as its
// JSON text. A member the SDK would refuse (a spec attribute name) is reported to note.
func appendExtensions(hs []attr, raw []byte, note func(string, ...any)) ([]attr, error) {
	if string(raw) == "{}" {
		return hs, nil // what shared/outbox writes for an event without extensions
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return hs, fmt.Errorf("not a JSON object: %v", err)
	}
	if len(m) > maxExtensions {
		return hs, fmt.Errorf("%d members exceeds the limit of %d", len(m), maxExtensions)
	}
	for name, v := range m {
		if name == kafkace.ExtPartitionKey {
			continue // always the aggregate id
		}
		if !validExtensionName(name) {
			return hs, fmt.Errorf("member %q: extension names are lower-case ASCII letters and digits", name)
		}
		var s string
		switch v := v.(type) {
		case nil:
			continue
		case string:
			s = v
		case bool:
			s = strconv.FormatBool(v)
		case json.Number:
			if n, err := v.Int64(); err == nil && n >= math.MinInt32 && n <= math.MaxInt32 {
				s = strconv.FormatInt(n, 10)
			} else {
				s = v.String()
			}
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return hs, fmt.Errorf("member %q: %v", name, err)
			}
			s = string(b)
		}
		if specAttributes[name] {
			note("extension %q: CloudEvents spec attribute MUST NOT be overwritten by extension", name)
		}
		hs = append(hs, attr{"ce_" + name, []byte(s)})
	}
	return hs, nil
}

func validExtensionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// parseTimestamptz parses the text PostgreSQL sends for a timestamptz in a session with
// TimeZone UTC and DateStyle ISO ("2026-03-04 05:06:07.123456+00", the fraction optional)
// without allocating. ok is false for anything else (other offsets, years beyond 9999, BC,
// infinity, out-of-range fields); the caller then uses pgtype's general parser.
func parseTimestamptz(b []byte) (t time.Time, ok bool) {
	if len(b) < 22 || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' ||
		string(b[len(b)-3:]) != "+00" {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || year < 1 || month < 1 || month > 12 || day < 1 ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	frac := b[19 : len(b)-3]
	if len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 7 || frac[0] != '.' {
			return time.Time{}, false
		}
		f, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			f *= 10
		}
		nsec = f
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // February 30th and the like
		return time.Time{}, false
	}
	return t, true
}

// deadLetter is the record for a row that is not a valid event, in the platform's dead-letter
// shape (package events, "Dead letters"): a JSON document with the defect and the row (the
// payload only when it is small) as the value, and the dead-letter ce_ headers, with
// knativeerrordest events.DestTopic(the row's topic), knativeerrordata the defect and
// dlqattempts 0. It is not a CloudEvent; kafkace.ParseDeadLetter reads it.
func deadLetter(r *row, cause error) *kgo.Record {
	cols := map[string]*string{}
	if r.rel != nil {
		for i, name := range r.rel.names {
			if r.null[i] {
				cols[name] = nil
				continue
			}
			s := string(r.vals[i])
			if len(s) > maxAttributeBytes {
				s = fmt.Sprintf("(%d bytes omitted)", len(s))
			}
			cols[name] = &s
		}
	}
	value, _ := json.Marshal(map[string]any{"error": cause.Error(), "row": cols})
	rowTopic := r.get(colTopic)
	topic := rowTopic
	if !validTopic(topic) || len(topic) > 245 {
		topic = []byte(fallbackDLQ)
	} else {
		topic = append(slices.Clip(topic), ".dlq"...)
	}
	key := r.get(colAggregateID)
	if len(key) > maxAttributeBytes {
		key = key[:maxAttributeBytes]
	}
	rec := kafkace.DeadLetter(&kgo.Record{
		Key:     bytes.Clone(key),
		Value:   value,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}},
	}, events.DeadLetter{Dest: events.DestTopic(string(rowTopic)), Data: []byte(cause.Error())})
	rec.Topic = string(topic)
	return rec
}
