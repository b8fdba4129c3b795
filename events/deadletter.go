package events

import (
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Dead-letter extensions. The first three are the ones Knative Eventing adds to an event it
// gives up on (knative.dev/eventing, package channel/attributes), so a dead letter written by
// the real Kafka Broker in a cluster and one written by this platform's own producers read the
// same; the dlq* ones are this platform's additions, absent from Knative's dead letters.
const (
	// ExtErrorDest names where delivery failed: the subscriber URL for HTTP delivery (as
	// Knative writes it), [DestGroup] for a Kafka consumer group, [DestTopic] for a producer
	// that could not make the event at all.
	ExtErrorDest = "knativeerrordest"
	// ExtErrorCode is the HTTP status of the last attempt, as decimal digits; absent when there
	// was no HTTP response (transport error, timeout, or no HTTP at all).
	ExtErrorCode = "knativeerrorcode"
	// ExtErrorData is the standard base64 of at most MaxErrorData bytes of the last response
	// body or, without one, of the error text.
	ExtErrorData = "knativeerrordata"
	// ExtDLQAttempts is the number of delivery attempts made, as decimal digits: 0 when the
	// event was given up before any (it did not decode, or could not be built).
	ExtDLQAttempts = "dlqattempts"
	// ExtDLQTopic, ExtDLQPartition and ExtDLQOffset say where the original record was read,
	// when it was read from Kafka; all three or none.
	ExtDLQTopic     = "dlqtopic"
	ExtDLQPartition = "dlqpartition"
	ExtDLQOffset    = "dlqoffset"

	// MaxErrorData bounds the bytes carried in ExtErrorData (before base64), as Knative does.
	MaxErrorData = 1024
	// maxDest bounds ExtErrorDest.
	maxDest = 2048
)

// DeadLetter is why an event was given up on: the dead-letter extensions it carries. One shape
// for every producer of dead letters on the platform, described in the package documentation.
// [DeadLetter.Extensions] writes it; [ParseDeadLetter] reads it back.
type DeadLetter struct {
	Dest     string // ExtErrorDest; required
	Code     int    // ExtErrorCode; 0 when there was no HTTP response
	Data     []byte // ExtErrorData, decoded; Extensions keeps the first MaxErrorData bytes
	Attempts int    // ExtDLQAttempts

	// Where the original record was read; Topic "" when it was not read from Kafka.
	Topic     string
	Partition int32
	Offset    int64
}

// DestGroup is the ExtErrorDest of a dead letter written by a Kafka consumer group that calls
// its handler in process (events/stream): "consumergroup:" + group.
func DestGroup(group string) string { return "consumergroup:" + group }

// DestTopic is the ExtErrorDest of a dead letter written by a producer that could not make a
// valid event for topic (the relay, for an outbox row that bypassed validation): "topic:" + topic.
func DestTopic(topic string) string { return "topic:" + topic }

// IsDeadLetterExtension reports whether name is one of the dead-letter extensions. Producers
// drop these from an event before adding their own, so a dead letter that is replayed and fails
// again carries one account of its failure, not two.
func IsDeadLetterExtension(name string) bool {
	switch name {
	case ExtErrorDest, ExtErrorCode, ExtErrorData, ExtDLQAttempts, ExtDLQTopic, ExtDLQPartition, ExtDLQOffset:
		return true
	}
	return false
}

// Extensions yields the extensions of d (name and canonical string value) in a fixed order,
// skipping the optional ones that are unset. Every value is a valid CloudEvents String: Dest
// is cleaned of invalid UTF-8 and control characters and bounded; Data is truncated to
// MaxErrorData bytes and base64-encoded.
func (d DeadLetter) Extensions() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		dest := cleanText(d.Dest, maxDest)
		if dest == "" {
			dest = "unknown"
		}
		if !yield(ExtErrorDest, dest) {
			return
		}
		if d.Code >= 100 && d.Code <= 599 && !yield(ExtErrorCode, strconv.Itoa(d.Code)) {
			return
		}
		if data := d.Data; len(data) > 0 {
			if len(data) > MaxErrorData {
				data = data[:MaxErrorData]
			}
			if !yield(ExtErrorData, base64.StdEncoding.EncodeToString(data)) {
				return
			}
		}
		if !yield(ExtDLQAttempts, strconv.Itoa(max(d.Attempts, 0))) {
			return
		}
		if topic := cleanText(d.Topic, 255); topic != "" {
			_ = yield(ExtDLQTopic, topic) &&
				yield(ExtDLQPartition, strconv.FormatInt(int64(max(d.Partition, 0)), 10)) &&
				yield(ExtDLQOffset, strconv.FormatInt(max(d.Offset, 0), 10))
		}
	}
}

// ParseDeadLetter reads the dead-letter extensions from ext (extension name to string value,
// as a binary-mode record's ce_ headers or an event's extensions carry them). It accepts what
// Knative writes (only the three knativeerror* extensions) and what [DeadLetter.Extensions]
// writes, and rejects anything else with an error naming the extension: a missing or empty
// ExtErrorDest, a code that is not an HTTP status, data that is not base64 or exceeds
// MaxErrorData, counts that are not non-negative integers, an origin that is incomplete.
func ParseDeadLetter(ext map[string]string) (DeadLetter, error) {
	fail := func(name, format string, args ...any) (DeadLetter, error) {
		return DeadLetter{}, fmt.Errorf("events: dead letter: extension %q: %s", name, fmt.Sprintf(format, args...))
	}
	var d DeadLetter
	dest, ok := ext[ExtErrorDest]
	if !ok || dest == "" {
		return fail(ExtErrorDest, "missing: not a dead letter")
	}
	if len(dest) > maxDest {
		return fail(ExtErrorDest, "%d bytes exceeds the limit of %d", len(dest), maxDest)
	}
	d.Dest = dest
	if v, ok := ext[ExtErrorCode]; ok {
		code, err := strconv.Atoi(v)
		if err != nil || code < 100 || code > 599 || strconv.Itoa(code) != v {
			return fail(ExtErrorCode, "not an HTTP status code: %.32q", v)
		}
		d.Code = code
	}
	if v, ok := ext[ExtErrorData]; ok {
		if len(v) > base64.StdEncoding.EncodedLen(MaxErrorData) {
			return fail(ExtErrorData, "more than %d bytes of data", MaxErrorData)
		}
		data, err := base64.StdEncoding.Strict().DecodeString(v)
		if err != nil || strings.ContainsAny(v, "\r\n") {
			return fail(ExtErrorData, "not standard base64")
		}
		if len(data) > 0 {
			d.Data = data
		}
	}
	count := func(name string, bits int) (int64, bool, error) {
		v, ok := ext[name]
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
			return 0, true, errors.New("not a non-negative decimal integer")
		}
		return n, true, nil
	}
	attempts, _, err := count(ExtDLQAttempts, 32)
	if err != nil {
		return fail(ExtDLQAttempts, "%v: %.32q", err, ext[ExtDLQAttempts])
	}
	d.Attempts = int(attempts)
	partition, hasPartition, err := count(ExtDLQPartition, 32)
	if err != nil {
		return fail(ExtDLQPartition, "%v: %.32q", err, ext[ExtDLQPartition])
	}
	offset, hasOffset, err := count(ExtDLQOffset, 64)
	if err != nil {
		return fail(ExtDLQOffset, "%v: %.32q", err, ext[ExtDLQOffset])
	}
	topic, hasTopic := ext[ExtDLQTopic]
	switch {
	case hasTopic && topic == "":
		return fail(ExtDLQTopic, "empty")
	case hasTopic && !(hasPartition && hasOffset):
		return fail(ExtDLQTopic, "without %s and %s", ExtDLQPartition, ExtDLQOffset)
	case !hasTopic && (hasPartition || hasOffset):
		return fail(ExtDLQTopic, "missing, but %s or %s is set", ExtDLQPartition, ExtDLQOffset)
	}
	d.Topic, d.Partition, d.Offset = topic, int32(partition), offset
	return d, nil
}

// cleanText makes s a valid CloudEvents String of at most limit bytes: invalid UTF-8 becomes
// U+FFFD, control characters become spaces and noncharacters U+FFFD, and the text is cut at a
// rune boundary. Error texts and URLs can hold anything; the dead letter must still decode.
func cleanText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return ' '
		case (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe:
			return '\uFFFD'
		}
		return r
	}, s)
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
