package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/infra/local/demo"
)

// make dev's pull path through a WASM transform, in the whole local runtime: the stack builds
// the Go quotes transform and stores it for crypto-ticker's version; on the real PingSource
// schedule poll fetches the demo's quotes (lower-case symbol, price a decimal string, ts in
// seconds), runs them through the module and stores them; the relay announces them on
// connect.data in the standard shape (upper-case symbol, integer price_cents, observed_at_ms),
// and nothing is refused.
func TestTransformDemoPullEndToEnd(t *testing.T) {
	cfg := testConfig(t, "poll", "relay")
	cfg.Demo = true
	s := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tickerID, sum, version string
	var size, abiVersion int
	var module []byte
	if err := conn.QueryRow(ctx, `SELECT i.id, t.version, t.sha256, t.size, t.abi_version, t.module FROM integrations i
		JOIN integration_transforms t ON t.integration_id = i.id AND t.version = i.current_version
		WHERE i.name = 'crypto-ticker'`).Scan(&tickerID, &version, &sum, &size, &abiVersion, &module); err != nil {
		t.Fatalf("crypto-ticker's current version has no transform: %v", err)
	}
	moduleSum := sha256.Sum256(module)
	if version != demo.Version || sum != hex.EncodeToString(moduleSum[:]) || size != len(module) || abiVersion != 1 {
		t.Fatalf("stored transform: version %s, sha256 %s (module's %x), size %d of %d, abi %d",
			version, sum, moduleSum, size, len(module), abiVersion)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumeTopics(events.TopicData),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got events.DataReceived
	for got.Name == "" {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no data.received of crypto-ticker reached connect.data (poll ticks every minute)")
		}
		for _, r := range fetches.Records() {
			e, err := kafkace.Decode(r)
			if err != nil || e.Type() != events.TypeDataReceived {
				t.Fatalf("connect.data record is not a data.received CloudEvent: %v", err)
			}
			var d events.DataReceived
			if err := e.DataAs(&d); err != nil {
				t.Fatalf("data.received data: %v", err)
			}
			if d.Name == "crypto-ticker" {
				got = d
				break
			}
		}
	}

	type quote struct {
		Symbol       string `json:"symbol"`
		PriceCents   int64  `json:"price_cents"`
		Currency     string `json:"currency"`
		ObservedAtMS int64  `json:"observed_at_ms"`
		Volume       int64  `json:"volume"`
	}
	normalized := func(where string, key string, data []byte) {
		t.Helper()
		var q quote
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields() // the source's "price" and "ts" are gone
		if err := dec.Decode(&q); err != nil {
			t.Errorf("%s %s: %s is not the transform's output: %v", where, key, data, err)
			return
		}
		if q.Symbol != strings.ToUpper(key) || q.Symbol == key || q.PriceCents <= 0 || q.Currency != "USD" ||
			q.ObservedAtMS <= 0 || q.ObservedAtMS%60_000 != 0 || q.Volume <= 0 {
			t.Errorf("%s %s: %s is not normalized (upper-case symbol, integer cents, USD, whole minutes in ms)", where, key, data)
		}
	}
	var keys []string
	for _, r := range got.Records {
		keys = append(keys, r.Key)
		if r.Stream != demo.QuotesStream {
			t.Errorf("record %s of stream %q, want %q", r.Key, r.Stream, demo.QuotesStream)
		}
		normalized("connect.data", r.Key, r.Data)
	}
	slices.Sort(keys)
	if got.DeliveryMode != "pull" || got.RecordCount != len(got.Records) || !slices.Equal(keys, []string{"btc", "eth", "sol"}) {
		t.Fatalf("data.received %+v; want crypto-ticker's three pulled quotes", got)
	}

	// Stored normalized, and nothing refused by the schema or the transform.
	rows, err := conn.Query(ctx, `SELECT key, data::text FROM records WHERE integration_id = $1 ORDER BY key`, tickerID)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var v [2]string
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 3 {
		t.Fatalf("crypto-ticker has %d stored records, want 3", len(stored))
	}
	for _, r := range stored {
		normalized("records", r[0], []byte(r[1]))
	}
	var refused int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM record_rejections WHERE integration_id = $1`, tickerID).Scan(&refused); err != nil {
		t.Fatal(err)
	}
	if refused != 0 {
		t.Fatalf("%d of crypto-ticker's records were refused", refused)
	}
}
