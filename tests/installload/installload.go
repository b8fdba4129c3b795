// Package installload measures installs end to end, the way users make them, in the whole
// local runtime (package stack, as make dev runs it): each install is a user's POST
// /v1/installs, the development identity server's sign-in and consent page, the browser's
// return to the consent callback (the install and install.completed commit there), then the
// outbox, the relay, Kafka, the dispatcher, notify, and finally notify's signed POST
// /lifecycle/install to an integration run by this package, which verifies every delivery
// with only the platform's published keys (events/webhook) and notes when each install
// arrived.
//
// Figures (Report):
//   - installs/s: installs over the time from the first POST /v1/installs to the last delivery;
//   - commit -> delivery: from the callback's answer (its transaction has committed) to the
//     integration receiving the signed event; the commit is a little earlier than the answer,
//     so this slightly understates the true latency (by the answer's write, well under 1 ms);
//   - request -> delivery: from the POST /v1/installs to the delivery, the user's whole wait
//     including the consent page.
//
// Rate 0 starts installs as fast as Concurrency browsers allow; Rate > 0 starts that many per
// second. Kill sends SIGKILL to notify and the relay in turn every KillEvery while installs
// run (the stack starts them again, as Knative restarts a crashed container): every install
// must still reach the integration at least once (Missing = 0), which the test of this
// package asserts.
//
// cmd/installload prints the report as a table and writes it as JSON.
package installload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/webhook"
	"github.com/myscrollr/connect/infra/local/stack"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/outbox"
)

// Options configure Run.
type Options struct {
	// Installs is how many users install the integration; required, at most 100,000.
	Installs int
	// Rate starts this many installs per second; 0 starts them as fast as Concurrency allows.
	Rate int
	// Concurrency is the number of users installing at once; default 32.
	Concurrency int
	// Kill sends SIGKILL to notify and the relay in turn every KillEvery (default 2 s) while
	// installs run.
	Kill      bool
	KillEvery time.Duration
	// Direct skips the user's side (POST /v1/installs, the consent page, the callback): each
	// install is committed the way the consent callback commits it (the install row and
	// install.completed through the outbox, one transaction), so Rate measures the pipeline from
	// the commit to the integration alone (outbox, relay, Kafka, dispatcher, notify, delivery).
	Direct bool
	// Root is the repository root; default: found upwards from the working directory.
	Root string
	// Timeout bounds the whole run; default 10 minutes.
	Timeout time.Duration
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Installs < 1 || o.Installs > 100_000 {
		return o, fmt.Errorf("installload: Installs (-n): %d is not between 1 and 100000", o.Installs)
	}
	if o.Rate < 0 {
		return o, fmt.Errorf("installload: Rate (-rate): %d must not be negative", o.Rate)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.Concurrency < 1 || o.Concurrency > 1024 {
		return o, fmt.Errorf("installload: Concurrency (-c): %d is not between 1 and 1024", o.Concurrency)
	}
	if o.KillEvery == 0 {
		o.KillEvery = 2 * time.Second
	}
	if o.KillEvery < 100*time.Millisecond {
		return o, fmt.Errorf("installload: KillEvery (-kill-every): %s is under 100ms", o.KillEvery)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Root == "" {
		root, err := stack.FindRoot()
		if err != nil {
			return o, err
		}
		o.Root = root
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o, nil
}

// Report is the result of a run. Durations are in milliseconds.
type Report struct {
	Mode        string  `json:"mode"` // "throughput" or "paced", with " (direct commits)" in Direct mode
	Installs    int     `json:"installs"`
	Rate        int     `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency"`
	Kills       int     `json:"kills"`
	Delivered   int     `json:"delivered"`   // installs whose install event reached the integration
	Missing     int     `json:"missing"`     // installs whose event never arrived
	Redelivered int     `json:"redelivered"` // deliveries of an event id already received
	Refused     int     `json:"refused"`     // deliveries whose signature did not verify
	Failed      int     `json:"failed"`      // installs that did not complete (an error answer)
	Seconds     float64 `json:"seconds"`     // first request to last delivery
	PerSecond   float64 `json:"installs_per_second"`
	CommitP50   float64 `json:"commit_to_delivery_p50_ms"`
	CommitP90   float64 `json:"commit_to_delivery_p90_ms"`
	CommitP99   float64 `json:"commit_to_delivery_p99_ms"`
	CommitMax   float64 `json:"commit_to_delivery_max_ms"`
	RequestP50  float64 `json:"request_to_delivery_p50_ms"`
	RequestP99  float64 `json:"request_to_delivery_p99_ms"`
	// Where the time goes, from the database's own timestamps (one clock): from the install's
	// transaction to notify's (outbox, relay, Kafka, dispatcher), and from notify's transaction
	// to the integration's 2xx (notify's signed POST).
	ToNotifyP50    float64 `json:"install_to_notify_p50_ms"`
	ToNotifyP99    float64 `json:"install_to_notify_p99_ms"`
	NotifyToIntP50 float64 `json:"notify_to_delivered_p50_ms"`
	NotifyToIntP99 float64 `json:"notify_to_delivered_p99_ms"`
	CPUs           int     `json:"cpus"`
	Note           string  `json:"note"`
}

// PrintTable writes rep as a two-column table.
func PrintTable(w io.Writer, rep Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("mode", rep.Mode)
	row("installs", rep.Installs)
	if rep.Rate > 0 {
		row("rate (installs/s)", rep.Rate)
	}
	row("concurrent users", rep.Concurrency)
	row("SIGKILLs (notify, relay)", rep.Kills)
	row("delivered / missing", fmt.Sprintf("%d / %d", rep.Delivered, rep.Missing))
	row("redelivered / refused / failed", fmt.Sprintf("%d / %d / %d", rep.Redelivered, rep.Refused, rep.Failed))
	row("installs/s end to end", fmt.Sprintf("%.1f", rep.PerSecond))
	row("commit -> delivery p50 / p90 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", rep.CommitP50, rep.CommitP90, rep.CommitP99, rep.CommitMax))
	row("request -> delivery p50 / p99", fmt.Sprintf("%.1f / %.1f ms", rep.RequestP50, rep.RequestP99))
	row("  install tx -> notify tx p50 / p99", fmt.Sprintf("%.1f / %.1f ms", rep.ToNotifyP50, rep.ToNotifyP99))
	row("  notify tx -> delivered p50 / p99", fmt.Sprintf("%.1f / %.1f ms", rep.NotifyToIntP50, rep.NotifyToIntP99))
	tw.Flush()
}

// receiver is the integration: it verifies each delivery with the published keys and notes
// the first arrival of each install.
type receiver struct {
	keysURL string
	mu      sync.Mutex
	keys    []webhook.PublicKey
	arrived map[string]time.Time // user id -> first delivery
	seen    map[string]bool      // webhook-id
	redeliv int
	refused int
	notify  chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/health" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/lifecycle/") {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	keys, err := rc.publicKeys()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	v, err := webhook.Verify(r.Header, body, keys, time.Now())
	if err != nil {
		rc.mu.Lock()
		rc.refused++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	now := time.Now()
	var e struct {
		Type string                  `json:"type"`
		Data events.LifecycleInstall `json:"data"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	if rc.seen[v.ID] {
		rc.redeliv++
	} else if e.Type == events.TypeLifecycleInstall {
		rc.seen[v.ID] = true
		if _, ok := rc.arrived[e.Data.UserID]; !ok {
			rc.arrived[e.Data.UserID] = now
		}
	}
	rc.mu.Unlock()
	select {
	case rc.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) publicKeys() ([]webhook.PublicKey, error) {
	rc.mu.Lock()
	keys := rc.keys
	rc.mu.Unlock()
	if keys != nil {
		return keys, nil
	}
	resp, err := http.Get(rc.keysURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, webhook.MaxKeySetBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", rc.keysURL, resp.StatusCode)
	}
	if keys, err = webhook.ParseKeySet(b); err != nil {
		return nil, err
	}
	rc.mu.Lock()
	rc.keys = keys
	rc.mu.Unlock()
	return keys, nil
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.arrived)
}

// timing is one install's moments.
type timing struct {
	user              string
	requested, commit time.Time
	err               error
}

// Run starts the stack (relay, install, notify), publishes a free app whose base URL is this
// package's receiver, makes the installs and waits until every completed install's event has
// arrived or the timeout.
func Run(ctx context.Context, o Options) (Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Report{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	s, err := stack.Start(ctx, stack.Config{
		Root: o.Root, Addr: "127.0.0.1:0", KafkaAddr: "127.0.0.1:0", StripeMockAddr: "127.0.0.1:0",
		IdentityAddr: "127.0.0.1:0", Functions: []string{"relay", "install", "notify"}, Logger: o.Logger,
	})
	if err != nil {
		return Report{}, err
	}
	defer s.Stop()

	rc := &receiver{keysURL: s.URL + "/v1/lifecycle/keys", arrived: map[string]time.Time{}, seen: map[string]bool{},
		notify: make(chan struct{}, 1)}
	integration := httptest.NewServer(rc)
	defer integration.Close()
	m := &manifest.Manifest{Name: "load-app", DisplayName: "Load App", Version: "1.0.0", Type: "app",
		Description: "The app installload installs.", BaseURL: integration.URL, Scopes: []string{"profile:read"},
		App: &manifest.App{Lifecycle: manifest.LifecycleHTTP}}
	if _, err := s.PublishListing(ctx, stack.Listing{Manifest: m}); err != nil {
		return Report{}, err
	}

	callback := s.URL + "/v1/installs/callback"
	transport := &http.Transport{MaxIdleConnsPerHost: o.Concurrency}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var pool *pgxpool.Pool
	var integrationID string
	if o.Direct {
		if pool, err = pgxpool.New(ctx, s.DatabaseURL); err != nil {
			return Report{}, err
		}
		defer pool.Close()
		if err := pool.QueryRow(ctx, `SELECT id::text FROM integrations WHERE name = 'load-app'`).Scan(&integrationID); err != nil {
			return Report{}, err
		}
	}
	// commitDirect commits an install as the consent callback does.
	commitDirect := func(user string) timing {
		tm := timing{user: user, requested: time.Now()}
		tm.err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var id string
			var at time.Time
			if err := tx.QueryRow(ctx, `INSERT INTO user_integrations (user_id, integration_id, scopes) VALUES ($1, $2, '{profile:read}')
				RETURNING id::text, installed_at`, user, integrationID).Scan(&id, &at); err != nil {
				return err
			}
			ce, err := outbox.New(events.Source("install"), events.TypeInstallCompleted, events.InstallCompleted{
				InstallID: id, IntegrationID: integrationID, Name: "load-app", UserID: user,
				Scopes: []string{"profile:read"}, InstalledAt: at})
			if err != nil {
				return err
			}
			_, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: events.InstallKey(integrationID, user), CloudEvent: ce})
			return err
		})
		tm.commit = time.Now()
		return tm
	}
	install := func(user string) timing {
		if o.Direct {
			return commitDirect(user)
		}
		tm := timing{user: user}
		token, err := s.Identity().Mint(idp.TokenRequest{Subject: user, Audience: s.APIResource})
		if err != nil {
			tm.err = err
			return tm
		}
		tm.requested = time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/installs", strings.NewReader(`{"integration":"load-app"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			tm.err = err
			return tm
		}
		var started struct {
			ConsentURL string `json:"consent_url"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&started)
		resp.Body.Close()
		if err != nil || started.ConsentURL == "" {
			tm.err = fmt.Errorf("POST /v1/installs: %d (%v)", resp.StatusCode, err)
			return tm
		}
		back, err := idptest.Follow(started.ConsentURL, callback, user, true)
		if err != nil {
			tm.err = err
			return tm
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, back.String(), nil)
		resp, err = client.Do(req)
		if err != nil {
			tm.err = err
			return tm
		}
		resp.Body.Close()
		tm.commit = time.Now()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "installed=") {
			tm.err = fmt.Errorf("callback: %d, Location %q", resp.StatusCode, loc)
		}
		return tm
	}

	// The killer: SIGKILL notify and the relay in turn while installs run.
	var kills atomic.Int64
	killDone := make(chan struct{})
	stopKilling := make(chan struct{})
	go func() {
		defer close(killDone)
		if !o.Kill {
			return
		}
		victims := []string{"notify", "relay"}
		t := time.NewTicker(o.KillEvery)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopKilling:
				return
			case <-t.C:
				if err := s.Kill(victims[i%len(victims)]); err == nil {
					kills.Add(1)
				}
			}
		}
	}()

	timings := make([]timing, o.Installs)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				timings[i] = install(fmt.Sprintf("u_load_%06d", i))
			}
		}()
	}
	start := time.Now()
	var pace *time.Ticker
	if o.Rate > 0 {
		pace = time.NewTicker(time.Second / time.Duration(o.Rate))
		defer pace.Stop()
	}
feed:
	for i := range o.Installs {
		if pace != nil {
			select {
			case <-pace.C:
			case <-ctx.Done():
				break feed
			}
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
		if i > 0 && i%500 == 0 {
			o.Logger.Info("installs started", "n", i, "delivered", rc.count())
		}
	}
	close(jobs)
	wg.Wait()
	close(stopKilling)
	<-killDone

	completed := 0
	var failures []error
	for _, tm := range timings {
		if tm.err == nil && !tm.commit.IsZero() {
			completed++
		} else if tm.err != nil && len(failures) < 5 {
			failures = append(failures, fmt.Errorf("%s: %w", tm.user, tm.err))
		}
	}
	// Wait for every completed install's event (a killed notify's deliveries are sent again by
	// its next wake-up, at most a minute later).
	for rc.count() < completed && ctx.Err() == nil {
		select {
		case <-rc.notify:
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}

	rep := Report{Mode: "throughput", Installs: o.Installs, Rate: o.Rate, Concurrency: o.Concurrency,
		Kills: int(kills.Load()), Failed: o.Installs - completed, CPUs: runtime.NumCPU(),
		Note: "commit -> delivery is measured from the consent callback's answer (its transaction committed) to the integration receiving notify's signed POST /lifecycle/install"}
	if o.Rate > 0 {
		rep.Mode = "paced"
	}
	if o.Direct {
		rep.Mode += " (direct commits)"
	}
	rc.mu.Lock()
	rep.Redelivered, rep.Refused = rc.redeliv, rc.refused
	var commitLat, requestLat []float64
	var last time.Time
	for _, tm := range timings {
		if tm.err != nil || tm.commit.IsZero() {
			continue
		}
		at, ok := rc.arrived[tm.user]
		if !ok {
			rep.Missing++
			continue
		}
		rep.Delivered++
		commitLat = append(commitLat, ms(at.Sub(tm.commit)))
		requestLat = append(requestLat, ms(at.Sub(tm.requested)))
		if at.After(last) {
			last = at
		}
	}
	rc.mu.Unlock()
	if !last.IsZero() {
		rep.Seconds = last.Sub(start).Seconds()
		rep.PerSecond = float64(rep.Delivered) / rep.Seconds
	}
	rep.CommitP50, rep.CommitP90, rep.CommitP99, rep.CommitMax = pct(commitLat, 50), pct(commitLat, 90), pct(commitLat, 99), pct(commitLat, 100)
	rep.RequestP50, rep.RequestP99 = pct(requestLat, 50), pct(requestLat, 99)
	if err := stages(ctx, s.DatabaseURL, &rep); err != nil {
		return rep, err
	}
	if len(failures) > 0 {
		return rep, fmt.Errorf("installload: %d of %d installs failed, e.g.: %w", rep.Failed, o.Installs, errors.Join(failures...))
	}
	return rep, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct is the p-th percentile (nearest rank) of xs; 0 for none.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// stages fills the report's breakdown from the database's timestamps.
func stages(ctx context.Context, dsn string, rep *Report) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT extract(epoch FROM e.created_at - u.installed_at) * 1000,
			extract(epoch FROM d.delivered_at - e.created_at) * 1000
		FROM user_integrations u
		JOIN lifecycle_events e ON e.install_id = u.id::text AND e.type = 'com.myscrollr.connect.lifecycle.install'
		JOIN lifecycle_deliveries d ON d.event_id = e.id AND d.delivered_at IS NOT NULL`)
	if err != nil {
		return err
	}
	var toNotify, toInt []float64
	for rows.Next() {
		var a, b float64
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		toNotify, toInt = append(toNotify, a), append(toInt, b)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rep.ToNotifyP50, rep.ToNotifyP99 = pct(toNotify, 50), pct(toNotify, 99)
	rep.NotifyToIntP50, rep.NotifyToIntP99 = pct(toInt, 50), pct(toInt, 99)
	return nil
}
