package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/wasmhost"
	"github.com/myscrollr/connect/wasmhost/abi"
)

// wasmNormalizer is the records.BatchNormalizer of poll: the records of an integration go
// through the WASM transform of its current version (integration_transforms), one batch per
// call into the sandbox; an integration without one keeps its records as they are. A record
// the transform refuses is rejected with its reason; a batch the module fails (trap, time or
// memory limit, broken output) fails the poll, which is retried with backoff.
type wasmNormalizer struct {
	host *wasmhost.Host
	pool *pgxpool.Pool
}

func (w wasmNormalizer) Normalize(ctx context.Context, src records.Source, stream string, record json.RawMessage) (json.RawMessage, error) {
	out, err := w.NormalizeBatch(ctx, src, []records.BatchInput{{Stream: stream, Data: record}})
	if err != nil {
		return nil, err
	}
	if len(out[0].Problems) > 0 {
		return nil, &records.RecordError{Problems: out[0].Problems}
	}
	return out[0].Data, nil
}

func (w wasmNormalizer) NormalizeBatch(ctx context.Context, src records.Source, in []records.BatchInput) ([]records.BatchOutput, error) {
	sum, err := records.CurrentTransform(ctx, w.pool, src.IntegrationID)
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
	m := w.host.Get(sum)
	if m == nil {
		b, err := records.TransformModule(ctx, w.pool, src.IntegrationID, sum)
		if err != nil {
			return nil, err
		}
		if m, err = w.host.Load(ctx, b); err != nil {
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
