// Package wasmnorm is the records.BatchNormalizer that runs integrations' WASM transforms: the
// records of an integration go through the transform of its current version
// (integration_transforms, records.CurrentTransform), one batch per call into the sandbox
// (wasmhost); an integration without one keeps its records as they are. A record the
// transform refuses is refused with its reason ("transform: ..."), the others are kept; a
// batch the module fails (trap, time or memory limit, broken output) is an error for the whole
// batch, which the caller retries or answers as a server error.
//
// It lives in shared because two functions use it (poll for pulled records, ingest for pushed
// ones) and a function never imports another; wasmhost stays free of the database, so the
// look-ups are here, not there. The look-up of the current transform is one indexed row per
// batch (not per record); a module's bytes are read only when the host has not compiled that
// sha256 yet.
package wasmnorm

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/wasmhost"
	"github.com/myscrollr/connect/wasmhost/abi"
)

// Normalizer is a records.BatchNormalizer (and so a records.Normalizer) over a wasmhost.Host;
// the database role behind DB needs SELECT on integrations and integration_transforms.
type Normalizer struct {
	Host *wasmhost.Host
	DB   records.Querier
}

var _ records.BatchNormalizer = Normalizer{}

// Normalize normalizes one record: a batch of one.
func (w Normalizer) Normalize(ctx context.Context, src records.Source, stream string, record json.RawMessage) (json.RawMessage, error) {
	out, err := w.NormalizeBatch(ctx, src, []records.BatchInput{{Stream: stream, Data: record}})
	if err != nil {
		return nil, err
	}
	if len(out[0].Problems) > 0 {
		return nil, &records.RecordError{Problems: out[0].Problems}
	}
	return out[0].Data, nil
}

// NormalizeBatch runs the batch through the integration's current transform, one output per
// input in order.
func (w Normalizer) NormalizeBatch(ctx context.Context, src records.Source, in []records.BatchInput) ([]records.BatchOutput, error) {
	sum, err := records.CurrentTransform(ctx, w.DB, src.IntegrationID)
	if err != nil {
		return nil, err
	}
	out := make([]records.BatchOutput, len(in))
	if sum == "" {
		for i, r := range in {
			out[i].Data = r.Data
		}
		return out, nil
	}
	m := w.Host.Get(sum)
	if m == nil {
		b, err := records.TransformModule(ctx, w.DB, src.IntegrationID, sum)
		if err != nil {
			return nil, err
		}
		if m, err = w.Host.Load(ctx, b); err != nil {
			return nil, fmt.Errorf("transform %s: %w", sum[:12], err)
		}
	}
	batch := make([]abi.Input, len(in))
	for i, r := range in {
		batch[i] = abi.Input{Stream: r.Stream, Data: r.Data}
	}
	res, err := m.Run(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("transform %s: %w", sum[:12], err)
	}
	for i, r := range res.Results {
		if r.Refused {
			out[i].Problems = []records.Problem{{Field: r.Field, Reason: "transform: " + r.Reason}}
			continue
		}
		out[i].Data = r.Data
	}
	return out, nil
}
