package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/eventschema"
	"github.com/myscrollr/connect/shared/inbox"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestWriteCommitsWithTransaction(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	ce, err := outbox.New("/myscrollr/connect/install", events.TypeInstallCompleted, events.InstallCompleted{
		InstallID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90", IntegrationID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91",
		Name: "crypto-ticker", UserID: "u_1", Scopes: []string{"dashboard:write"}, InstalledAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	ce.SetSubject("u_1")
	ce.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	id, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: "i_1", CloudEvent: ce})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var (
		aggType, aggID, typ, source, subject, topic string
		payload, ext                                []byte
	)
	err = pool.QueryRow(ctx, `SELECT aggregatetype, aggregateid, type, source, subject, topic, payload, extensions FROM outbox WHERE id = $1`, id).
		Scan(&aggType, &aggID, &typ, &source, &subject, &topic, &payload, &ext)
	if err != nil {
		t.Fatal(err)
	}
	if aggType != "install" || aggID != "i_1" || typ != "com.myscrollr.connect.install.completed" ||
		source != "/myscrollr/connect/install" || subject != "u_1" || topic != outbox.DefaultTopic {
		t.Fatalf("row = %s %s %s %s %s %s", aggType, aggID, typ, source, subject, topic)
	}
	var data map[string]any
	if err := json.Unmarshal(payload, &data); err != nil || data["user_id"] != "u_1" {
		t.Fatalf("payload = %s (%v)", payload, err)
	}
	var extensions map[string]string
	if err := json.Unmarshal(ext, &extensions); err != nil || extensions["traceparent"] == "" {
		t.Fatalf("extensions = %s (%v)", ext, err)
	}
}

func TestRollbackLeavesNoEvent(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	ce, _ := outbox.New("/test", "com.myscrollr.connect.test.rolledback", map[string]int{"n": 1})
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: "a", CloudEvent: ce}); err != nil {
			return err
		}
		return errors.New("business rule failed")
	})
	if err == nil {
		t.Fatal("expected the transaction to fail")
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("outbox has %d rows after rollback, want 0", n)
	}
}

func TestWriteRejectsBadEvents(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	good, _ := outbox.New("/test", "com.myscrollr.connect.x.y", map[string]int{"n": 1})
	noType := good.Clone()
	noType.SetType("")
	badID := good.Clone()
	badID.SetID("not-a-uuid")
	xml := good.Clone()
	xml.SetData("application/xml", []byte("<a/>"))
	badPayload, _ := outbox.New("/test", events.TypeUserDeleted, map[string]any{"user_id": "", "deleted_at": "yesterday"})
	cases := map[string]outbox.Event{
		"no aggregate type": {AggregateID: "a", CloudEvent: good},
		"no aggregate id":   {AggregateType: "t", CloudEvent: good},
		"no type":           {AggregateType: "t", AggregateID: "a", CloudEvent: noType},
		"id not uuid":       {AggregateType: "t", AggregateID: "a", CloudEvent: badID},
		"xml data":          {AggregateType: "t", AggregateID: "a", CloudEvent: xml},
		"off-schema data":   {AggregateType: "user", AggregateID: "u", CloudEvent: badPayload},
	}
	for name, e := range cases {
		if _, err := outbox.Write(ctx, pool, e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err := outbox.Write(ctx, pool, cases["off-schema data"])
	var se *eventschema.Error
	if !errors.As(err, &se) || (se.Field != "user_id" && se.Field != "deleted_at") {
		t.Errorf("off-schema data: %v; want an eventschema.Error naming the field", err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows written by rejected events", n)
	}
}

func TestInboxClaimOnce(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	first, err := inbox.Claim(ctx, pool, "uninstall", "/src", "evt-1")
	if err != nil || !first {
		t.Fatalf("first claim = %v, %v", first, err)
	}
	again, err := inbox.Claim(ctx, pool, "uninstall", "/src", "evt-1")
	if err != nil || again {
		t.Fatalf("second claim = %v, %v; want false", again, err)
	}
	other, err := inbox.Claim(ctx, pool, "notify", "/src", "evt-1")
	if err != nil || !other {
		t.Fatalf("another consumer's claim = %v, %v; want true", other, err)
	}
	if _, err := inbox.Claim(ctx, pool, "", "/src", "x"); err == nil {
		t.Fatal("empty consumer accepted")
	}
}

// checkedInstall is typed data with its own check: a test double that says what it is told.
type checkedInstall struct {
	events.InstallCompleted
	verdict error
}

func (c checkedInstall) CheckSchema(string) error { return c.verdict }

// Checked data is marshalled by Write and judged by its own check, not by the validator; an
// event type without a schema cannot use it; data on the CloudEvent is still validated.
func TestWriteCheckedData(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	ce := cloudevents.NewEvent()
	ce.SetSource("/myscrollr/connect/install")
	ce.SetType(events.TypeInstallCompleted)
	good := events.InstallCompleted{InstallID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90", IntegrationID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91",
		Name: "crypto-ticker", UserID: "u_1", Scopes: []string{"dashboard:write"}, InstalledAt: time.Now().UTC()}
	id, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: "i_1", CloudEvent: ce, Data: checkedInstall{InstallCompleted: good}})
	if err != nil {
		t.Fatal(err)
	}
	var payload []byte
	if err := tx.QueryRow(ctx, `SELECT payload FROM outbox WHERE id = $1`, id).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var back events.InstallCompleted
	if err := json.Unmarshal(payload, &back); err != nil || back.InstallID != good.InstallID || back.Name != good.Name {
		t.Fatalf("payload %s (%v)", payload, err)
	}
	refusal := errors.New("off the schema")
	if _, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: "i_1", CloudEvent: ce,
		Data: checkedInstall{InstallCompleted: good, verdict: refusal}}); !errors.Is(err, refusal) {
		t.Fatalf("a refused check wrote: %v", err)
	}
	other := ce.Clone()
	other.SetType("com.example.unknown")
	if _, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: "i_1", CloudEvent: other,
		Data: checkedInstall{InstallCompleted: good}}); err == nil {
		t.Fatal("checked data for a type without a schema was written")
	}
	bad := good
	bad.Name = ""
	withData, err := outbox.New("/myscrollr/connect/install", events.TypeInstallCompleted, bad)
	if err != nil {
		t.Fatal(err)
	}
	var se *eventschema.Error
	if _, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: "i_1", CloudEvent: withData}); !errors.As(err, &se) {
		t.Fatalf("data off the schema on the CloudEvent: %v", err)
	}
}
