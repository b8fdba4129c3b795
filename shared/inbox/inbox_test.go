package inbox

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM processed_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClaimAndSeen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)

	seen, err := Seen(ctx, pool, "uninstall", "/logto", "e1")
	if err != nil || seen {
		t.Fatalf("Seen before any claim = %v, %v", seen, err)
	}
	// A claim rolled back is not seen.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Claim(ctx, tx, "uninstall", "/logto", "e1"); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if seen, err := Seen(ctx, tx, "uninstall", "/logto", "e1"); err != nil || !seen {
		t.Fatalf("Seen inside the claiming transaction = %v, %v", seen, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if seen, err := Seen(ctx, pool, "uninstall", "/logto", "e1"); err != nil || seen {
		t.Fatalf("Seen after rollback = %v, %v", seen, err)
	}
	// Committed: seen, and a second claim is refused. Other consumers and sources are apart.
	if ok, err := Claim(ctx, pool, "uninstall", "/logto", "e1"); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if ok, err := Claim(ctx, pool, "uninstall", "/logto", "e1"); err != nil || ok {
		t.Fatalf("second Claim = %v, %v; want false", ok, err)
	}
	for _, k := range [][3]string{{"uninstall", "/logto", "e1"}, {"notify", "/logto", "e1"}, {"uninstall", "/other", "e1"}} {
		seen, err := Seen(ctx, pool, k[0], k[1], k[2])
		if err != nil || seen != (k == [3]string{"uninstall", "/logto", "e1"}) {
			t.Errorf("Seen%v = %v, %v", k, seen, err)
		}
	}
	for _, k := range [][3]string{{"", "s", "i"}, {"c", "", "i"}, {"c", "s", ""}} {
		if _, err := Seen(ctx, pool, k[0], k[1], k[2]); err == nil {
			t.Errorf("Seen%q accepted an empty key part", k)
		}
		if _, err := Claim(ctx, pool, k[0], k[1], k[2]); err == nil {
			t.Errorf("Claim%q accepted an empty key part", k)
		}
	}
}

// insertAged inserts n claims of consumer made at the given time.
func insertAged(t *testing.T, pool *pgxpool.Pool, consumer string, n int, at time.Time) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO processed_events (consumer, source, id, processed_at)
		SELECT $1, '/s', 'e' || g, $3 FROM generate_series(1, $2) AS g`, consumer, n, at); err != nil {
		t.Fatal(err)
	}
}

func TestPruneDeletesOnlyOldClaimsInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-DefaultRetention)
	insertAged(t, pool, "old", 2500, cutoff.Add(-time.Hour))
	insertAged(t, pool, "edge", 3, cutoff) // exactly at the cutoff: kept (strictly before goes)
	insertAged(t, pool, "new", 10, now.Add(-time.Minute))

	// A batch of 1000 takes three statements for 2500 rows; the result is the same as one.
	n, err := prune(ctx, pool, cutoff, 1000)
	if err != nil || n != 2500 {
		t.Fatalf("prune = %d, %v; want 2500", n, err)
	}
	left := map[string]int{}
	rows, err := pool.Query(ctx, `SELECT consumer, count(*) FROM processed_events GROUP BY consumer`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		var k int
		if err := rows.Scan(&c, &k); err != nil {
			t.Fatal(err)
		}
		left[c] = k
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left["edge"] != 3 || left["new"] != 10 {
		t.Fatalf("left after prune: %v; want edge 3, new 10", left)
	}

	// Idempotent: nothing more to delete.
	if n, err := Prune(ctx, pool, cutoff); err != nil || n != 0 {
		t.Fatalf("second Prune = %d, %v; want 0", n, err)
	}
	// A batch exactly full is followed by an empty one, not mistaken for the end.
	insertAged(t, pool, "old", 1000, cutoff.Add(-time.Hour))
	if n, err := prune(ctx, pool, cutoff, 500); err != nil || n != 1000 {
		t.Fatalf("prune of exactly two batches = %d, %v; want 1000", n, err)
	}
	if got := count(t, pool); got != 13 {
		t.Fatalf("%d claims left, want 13", got)
	}
}

// Two pruners at once (two relays during a rollout) delete every old row once between them.
func TestPruneConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	cutoff := time.Now().Add(-DefaultRetention)
	insertAged(t, pool, "old", 3000, cutoff.Add(-time.Hour))
	insertAged(t, pool, "new", 7, time.Now())

	var wg sync.WaitGroup
	results := make([]int64, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], errs[i] = prune(ctx, pool, cutoff, 250) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pruner %d: %v", i, err)
		}
	}
	if results[0]+results[1] != 3000 {
		t.Fatalf("pruners deleted %d + %d rows, want 3000 in all", results[0], results[1])
	}
	if got := count(t, pool); got != 7 {
		t.Fatalf("%d claims left, want 7", got)
	}
}

func TestPruneStopsWithItsContext(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	insertAged(t, pool, "old", 10, time.Now().Add(-30*24*time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := Prune(ctx, pool, time.Now())
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("Prune with a done context = %d, %v", n, err)
	}
	if got := count(t, pool); got != 10 {
		t.Fatalf("%d claims left, want all 10", got)
	}
}
