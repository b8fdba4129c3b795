package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// BatchInput is one valid record handed to a BatchNormalizer: its stream and its data (a
// compact JSON object).
type BatchInput struct {
	Stream string
	Data   json.RawMessage
}

// BatchOutput is a BatchNormalizer's answer for one record: the normalized data, or the
// problems that refuse the record (pointers into the record's data).
type BatchOutput struct {
	Data     json.RawMessage
	Problems []Problem
}

// BatchNormalizer normalizes the valid records of one source's batch in one call: the WASM
// transforms run a batch per call into their sandbox (wasmhost), which is what makes them
// cheap. It returns one output per input, in order; a refused record is data (its output's
// Problems), any error fails the whole batch (nothing of it is stored, it is retried).
// It is a Normalizer too, so it fits every seam that takes one.
type BatchNormalizer interface {
	Normalizer
	NormalizeBatch(ctx context.Context, src Source, in []BatchInput) ([]BatchOutput, error)
}

// AsBatch returns n as a BatchNormalizer: n itself when it is one, otherwise one that calls
// n.Normalize per record (a *RecordError refuses that record; any other error fails the batch).
func AsBatch(n Normalizer) BatchNormalizer {
	if n == nil {
		n = Identity{}
	}
	if bn, ok := n.(BatchNormalizer); ok {
		return bn
	}
	return perRecord{n}
}

type perRecord struct{ Normalizer }

func (p perRecord) NormalizeBatch(ctx context.Context, src Source, in []BatchInput) ([]BatchOutput, error) {
	out := make([]BatchOutput, len(in))
	for i, r := range in {
		data, err := p.Normalize(ctx, src, r.Stream, r.Data)
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) {
				return nil, err
			}
			out[i].Problems = re.Problems
			if len(out[i].Problems) == 0 {
				out[i].Problems = []Problem{{Reason: "refused by the normalizer"}}
			}
			continue
		}
		out[i].Data = data
	}
	return out, nil
}

// checkPullBatch is CheckPull: each item is checked against its stream (schema, key) as
// Check does, the valid ones go through n in one batch, and each output is checked as Check
// checks a normalizer's output.
func checkPullBatch(ctx context.Context, src Source, sch *PullSchema, items []PullItem, n BatchNormalizer) ([]Record, []Rejection, error) {
	// Each item ends as a record or a rejection, reported in the items' order.
	type entry struct {
		rec  Record
		rej  Rejection
		ok   bool // rec is valid; the normalizer decides
		norm int  // index in the batch when ok
	}
	entries := make([]entry, len(items))
	var in []BatchInput
	for i, it := range items {
		e := &entries[i]
		e.rej = Rejection{Stream: it.Stream, Sample: string(it.Raw), Problems: it.Problems}
		if len(e.rej.Problems) > 0 {
			continue
		}
		st := sch.Stream(it.Stream)
		if st == nil {
			e.rej.Problems = []Problem{{Field: "/stream", Reason: fmt.Sprintf("stream %q is not declared at GET /schema", it.Stream)}}
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, it.RawData); err != nil {
			e.rej.Problems = []Problem{{Field: "/data", Reason: "not valid JSON"}}
			continue
		}
		// Identity: validation and key only; the normalizer runs once for the whole batch.
		rec, problems, err := Check(ctx, src, st, it.Data, compact.Bytes(), Identity{})
		if err != nil {
			return nil, nil, err
		}
		if len(problems) > 0 {
			e.rej.Key = keyOf(st, it.Data)
			e.rej.Problems = dataProblems(problems)
			continue
		}
		e.rec, e.rej.Key, e.ok, e.norm = rec, rec.Key, true, len(in)
		in = append(in, BatchInput{Stream: rec.Stream, Data: rec.Data})
	}
	var outs []BatchOutput
	if len(in) > 0 {
		var err error
		if outs, err = n.NormalizeBatch(ctx, src, in); err != nil {
			return nil, nil, fmt.Errorf("records: normalize %s: %w", src.Name, err)
		}
		if len(outs) != len(in) {
			return nil, nil, fmt.Errorf("records: normalize %s: %d outputs for %d records", src.Name, len(outs), len(in))
		}
	}
	var good []Record
	var bad []Rejection
	for _, e := range entries {
		if !e.ok {
			bad = append(bad, e.rej)
			continue
		}
		o := outs[e.norm]
		if len(o.Problems) > 0 {
			e.rej.Problems = dataProblems(tidy(append([]Problem(nil), o.Problems...)))
			bad = append(bad, e.rej)
			continue
		}
		if why := checkOutput(o.Data); why != "" {
			e.rej.Problems = []Problem{{Field: "/data", Reason: "normalizer output " + why}}
			bad = append(bad, e.rej)
			continue
		}
		e.rec.Data = o.Data
		good = append(good, e.rec)
	}
	return good, bad, nil
}

// dataProblems points problems of a record's data into its GET /data item.
func dataProblems(ps []Problem) []Problem {
	for i := range ps {
		ps[i].Field = "/data" + ps[i].Field
	}
	return ps
}

func keyOf(st *Stream, v any) string {
	if key, kp := deriveKey(st.Key, v); len(kp) == 0 {
		return key
	}
	return ""
}
