package demo

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/pgtest"
)

// The paid demo listings' developer can take charges after Seed, also when the account was
// disabled or disconnected in between (a reseed enables it again).
func TestSeedEnablesPaidListingsDeveloper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for round := range 2 {
		s, err := Start(slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Seed(ctx, conn)
		s.Stop()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM integrations i JOIN developer_accounts d ON d.developer_id = i.developer_id
			WHERE i.pricing_model <> 'free' AND i.is_published AND d.stripe_account_id = $1 AND d.charges_enabled
			AND d.payouts_enabled AND d.deauthorized_at IS NULL`, DemoStripeAccount).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var paid int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM integrations WHERE pricing_model <> 'free'`).Scan(&paid); err != nil {
			t.Fatal(err)
		}
		if paid < 2 || n != paid {
			t.Fatalf("round %d: %d of %d paid listings have a developer who can take charges", round, n, paid)
		}
		if _, err := conn.Exec(ctx, `UPDATE developer_accounts SET charges_enabled = false, deauthorized_at = now()`); err != nil {
			t.Fatal(err)
		}
	}
}
