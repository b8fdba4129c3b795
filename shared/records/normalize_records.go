package records

import (
	"context"
	"fmt"
)

// NormalizeRecords runs records that passed Check with Identity (valid against their stream,
// keyed, Data still the source's) through n in one batch, and checks each output as Check
// checks a normalizer's. It returns one entry per record: the problems that refuse it (pointers
// into its data), or nil when recs[i].Data now holds the normalized data. An error fails the
// whole batch (the normalizer failed: a transform's trap or limit, the database); nothing of
// recs is changed then.
//
// It is the batch form of Check's last step for callers that validate record by record and
// normalize once per request (functions/ingest); CheckPull does the same for pulled records.
func NormalizeRecords(ctx context.Context, src Source, recs []Record, n BatchNormalizer) ([][]Problem, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	in := make([]BatchInput, len(recs))
	for i, r := range recs {
		in[i] = BatchInput{Stream: r.Stream, Data: r.Data}
	}
	outs, err := n.NormalizeBatch(ctx, src, in)
	if err != nil {
		return nil, fmt.Errorf("records: normalize %s: %w", src.Name, err)
	}
	if len(outs) != len(in) {
		return nil, fmt.Errorf("records: normalize %s: %d outputs for %d records", src.Name, len(outs), len(in))
	}
	problems := make([][]Problem, len(recs))
	for i, o := range outs {
		switch {
		case len(o.Problems) > 0:
			problems[i] = tidy(append([]Problem(nil), o.Problems...))
		case checkOutput(o.Data) != "":
			problems[i] = []Problem{{Reason: "normalizer output " + checkOutput(o.Data)}}
		}
	}
	for i, o := range outs {
		if problems[i] == nil {
			recs[i].Data = o.Data
		}
	}
	return problems, nil
}
