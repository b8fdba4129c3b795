package records

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier is what the transform look-ups need of a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CurrentTransform returns the sha256 of the WASM transform of the integration's current
// (published) version, or "" when it has none (its records are stored as they come). An
// integration not yet published has no current version: its latest version stands in, as it
// does for the stream schemas ingest checks pushed records against (coalesce(current_version,
// latest_version)), so a developer's unpublished push source is normalized by the transform
// of the version its records are validated by.
// Normalizers look this up per batch (it is one indexed row) and load the module's bytes
// (TransformModule) only for a sha256 they have not compiled yet.
func CurrentTransform(ctx context.Context, q Querier, integrationID string) (string, error) {
	var sum string
	err := q.QueryRow(ctx, `SELECT t.sha256 FROM integrations i
		JOIN integration_transforms t ON t.integration_id = i.id AND t.version = coalesce(i.current_version, i.latest_version)
		WHERE i.id = $1`, integrationID).Scan(&sum)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("records: transform of %s: %w", integrationID, err)
	}
	return sum, nil
}

// TransformModule returns the bytes of an integration's transform with the given sha256.
func TransformModule(ctx context.Context, q Querier, integrationID, sha256 string) ([]byte, error) {
	var b []byte
	err := q.QueryRow(ctx, `SELECT module FROM integration_transforms WHERE integration_id = $1 AND sha256 = $2 LIMIT 1`,
		integrationID, sha256).Scan(&b)
	if err != nil {
		return nil, fmt.Errorf("records: transform %s of %s: %w", sha256, integrationID, err)
	}
	return b, nil
}
