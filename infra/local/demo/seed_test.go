package demo

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Seed writes the four listings with their full manifests (valid with loopback http allowed,
// icon and screenshots where the catalog reads them), at tiers the schema accepts, and a second
// Seed (make dev restarted: new ports) refreshes them in place.
func TestSeed(t *testing.T) {
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
		rows, err := conn.Query(ctx, `SELECT i.name, i.base_url, i.verification_tier, i.manifest, v.manifest,
				i.manifest->>'icon', jsonb_array_length(i.manifest->'screenshots')
			FROM integrations i JOIN integration_versions v ON v.integration_id = i.id AND v.version = i.current_version
			WHERE i.is_published ORDER BY i.name`)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			name, baseURL, tier string
			m, vm               []byte
			icon                string
			screenshots         int
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.name, &x.baseURL, &x.tier, &x.m, &x.vm, &x.icon, &x.screenshots)
			return x, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Fatalf("round %d: %d published demo listings, want 4", round, len(got))
		}
		byName := map[string]Integration{}
		for _, in := range s.Integrations {
			byName[in.Name] = in
		}
		for _, r := range got {
			in := byName[r.name]
			m, err := manifest.Parse(r.m, manifest.Options{AllowLoopbackHTTP: true})
			if err != nil {
				t.Fatalf("%s: stored manifest: %v", r.name, err)
			}
			if r.baseURL != in.BaseURL || m.BaseURL != in.BaseURL || r.icon != in.BaseURL+"/icon.svg" || r.screenshots != 1 {
				t.Errorf("round %d %s: base_url %s, manifest base_url %s, icon %s, %d screenshots; want %s",
					round, r.name, r.baseURL, m.BaseURL, r.icon, r.screenshots, in.BaseURL)
			}
			if string(r.m) != string(r.vm) {
				t.Errorf("%s: the version's manifest differs from the listing's", r.name)
			}
			var want, stored any
			raw, _ := json.Marshal(in.Manifest())
			if json.Unmarshal(raw, &want) != nil || json.Unmarshal(r.m, &stored) != nil || !jsonEqual(want, stored) {
				t.Errorf("%s: stored manifest %s, want %s", r.name, r.m, raw)
			}
		}
		if got[0].name != "crypto-ticker" || got[0].tier != "featured" {
			t.Errorf("crypto-ticker: tier %q, want featured", got[0].tier)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// A manifest that does not validate fails the seed before anything is written.
func TestSeedRefusesAnInvalidManifest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := Start(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	s.Integrations[2].Tags = []string{"Not A Tag!"}
	if err := s.Seed(ctx, conn); err == nil || !strings.Contains(err.Error(), `"/tags/0"`) {
		t.Fatalf("seed of an invalid manifest: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM integrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d listings written", n)
	}
}
