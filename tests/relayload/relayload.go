// Package relayload measures the CDC relay end to end, as it runs in production: the relay
// binary (built with go build from functions/relay) as its own process, a throwaway
// PostgreSQL cluster (shared/pgcluster, migrated with shared/db), an in-process Kafka cluster
// (kfake) on 127.0.0.1, events written through shared/outbox, and a Kafka consumer that
// notes when each event arrives.
//
// Two modes: Rate 0 writes as fast as the writers can (throughput), Rate > 0 paces the
// writes at that many events per second (latency). The latency of an event is the time from
// the return of its transaction's COMMIT to the consumer seeing it (commit -> relay -> Kafka
// -> consumer), so it includes a consumer fetch; the throughput is the number of events over
// the time from the first commit to the last arrival.
//
// cmd/relayload prints the report as a table and writes it as JSON.
package relayload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/infra/local/stack"
	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/pgcluster"
)

// topic is where the load's events go (the outbox default).
const topic = outbox.DefaultTopic

// Options configure Run.
type Options struct {
	// Events is how many events to write; required, at most 10,000,000.
	Events int
	// Rate paces the writes in events per second; 0 writes as fast as possible.
	Rate int
	// Batch is the number of events per transaction; default 100 when Rate is 0, else 10.
	Batch int
	// Writers is the number of concurrent writing connections; default 2 when Rate is 0, else
	// 1 (a paced load has one writer, so the pace is exact).
	Writers int
	// Aggregates spreads the events over this many aggregate ids (Kafka keys); default 100.
	Aggregates int
	// WorkspaceDir is the go.work root the relay is built in; default: found upwards from
	// the working directory.
	WorkspaceDir string
	// RelayBinary, when set, is used instead of building functions/relay.
	RelayBinary string
	// Timeout bounds the whole run; default 5 minutes.
	Timeout time.Duration
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Events < 1 || o.Events > 10_000_000 {
		return o, fmt.Errorf("relayload: Events (-n): %d is not between 1 and 10000000", o.Events)
	}
	if o.Rate < 0 {
		return o, fmt.Errorf("relayload: Rate (-rate): %d must not be negative", o.Rate)
	}
	if o.Batch == 0 {
		o.Batch = 100
		if o.Rate > 0 {
			o.Batch = 10
		}
	}
	if o.Batch < 1 || o.Batch > 10_000 {
		return o, fmt.Errorf("relayload: Batch (-batch): %d is not between 1 and 10000", o.Batch)
	}
	if o.Writers == 0 {
		o.Writers = 2
		if o.Rate > 0 {
			o.Writers = 1
		}
	}
	if o.Writers < 1 || o.Writers > 64 {
		return o, fmt.Errorf("relayload: Writers (-writers): %d is not between 1 and 64", o.Writers)
	}
	if o.Aggregates == 0 {
		o.Aggregates = 100
	}
	if o.Aggregates < 1 {
		return o, fmt.Errorf("relayload: Aggregates (-aggregates): %d must be positive", o.Aggregates)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Report is the outcome of a run. Durations are in milliseconds in JSON.
type Report struct {
	Mode       string  `json:"mode"` // "throughput" or "paced"
	Rate       int     `json:"rate"` // requested events/s, 0 = as fast as possible
	Events     int     `json:"events"`
	Received   int     `json:"received"`   // distinct events consumed
	Duplicates int     `json:"duplicates"` // extra deliveries (at-least-once replays)
	Missing    int     `json:"missing"`    // written and never consumed
	DurationMS float64 `json:"duration_ms"`
	PerSecond  float64 `json:"events_per_second"`
	// WritePerSecond is how fast the writers committed: when it is close to PerSecond in
	// throughput mode, the writers, not the relay, were the limit.
	WritePerSecond float64 `json:"write_events_per_second"`
	P50MS          float64 `json:"p50_ms"`
	P90MS          float64 `json:"p90_ms"`
	P99MS          float64 `json:"p99_ms"`
	MaxMS          float64 `json:"max_ms"`
	RelayCPUMS     float64 `json:"relay_cpu_ms"`           // user+system CPU of the relay process
	RelayCPUPerEvt float64 `json:"relay_cpu_us_per_event"` // the same per event, microseconds
}

// Run performs one load run and returns its report. Every process and directory it made is
// gone when it returns.
func Run(ctx context.Context, o Options) (rep Report, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return rep, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	log := o.Logger

	tmp, err := os.MkdirTemp("", "relayload-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	bin := o.RelayBinary
	if bin == "" {
		ws := o.WorkspaceDir
		if ws == "" {
			if ws, err = findWorkspaceRoot(); err != nil {
				return rep, err
			}
		}
		log.Info("building the relay", "workspace", ws)
		if bin, err = buildRelay(ctx, ws, tmp); err != nil {
			return rep, err
		}
	}

	pg, err := pgcluster.Start(ctx, pgcluster.Options{Logger: log})
	if err != nil {
		return rep, err
	}
	defer pg.Stop()
	url := pg.URL("postgres")
	if err := migrate.Up(ctx, url); err != nil {
		return rep, fmt.Errorf("relayload: migrate: %w", err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return rep, err
	}
	defer pool.Close()

	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic, topic+".dlq"))
	if err != nil {
		return rep, fmt.Errorf("relayload: kafka: %w", err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()

	relay, err := startRelay(ctx, bin, tmp, url, brokers)
	if err != nil {
		return rep, err
	}
	defer relay.stop(log)
	log.Info("relay ready; writing", "events", o.Events, "rate", o.Rate)

	res, err := load(ctx, o, pool, brokers)
	if err != nil {
		return rep, fmt.Errorf("%w (relay log: %s)", err, relay.tail())
	}
	cpu := relay.cpu()
	rep = res.report(o)
	rep.RelayCPUMS = float64(cpu.Microseconds()) / 1000
	rep.RelayCPUPerEvt = float64(cpu.Microseconds()) / float64(o.Events)
	return rep, nil
}

func buildRelay(ctx context.Context, workspace, dir string) (string, error) {
	out := filepath.Join(dir, "relay")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "nolambda", "-o", out, "./functions/relay") // as make dev and the Knative image build it
	cmd.Dir = workspace
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("relayload: go build ./functions/relay: %w\n%s", err, b)
	}
	return out, nil
}

// relayProc is the running relay binary.
type relayProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startRelay(ctx context.Context, bin, dir, dbURL string, brokers []string) (*relayProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logPath := filepath.Join(dir, "relay.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"KAFKA_BROKERS="+strings.Join(brokers, ","),
		"PORT="+strconv.Itoa(port),
		"LISTEN_HOST=127.0.0.1",
		"LOG_LEVEL=warn",
		"DRAIN_TIMEOUT=0s",  // no Knative-style wait for in-flight HTTP requests at shutdown
		"RELAY_RETENTION=0", // keep rows: deleting them is not what is measured
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("relayload: start relay: %w", err)
	}
	p := &relayProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()

	// Ready means streaming: the slot exists, so nothing written from now on is missed.
	ready := "http://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ready, nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("relayload: relay exited during start-up: %s", p.tail())
		case <-ctx.Done():
			p.stop(nil)
			return nil, fmt.Errorf("relayload: relay not ready: %w: %s", ctx.Err(), p.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cpu is the relay's user and system CPU time so far.
func (p *relayProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:]) // state ppid ... utime (12th) stime (13th)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// stop ends the relay with SIGTERM (it drains), then SIGKILL if it lingers.
func (p *relayProc) stop(log *slog.Logger) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		if log != nil {
			log.Warn("relay did not stop after SIGTERM; killing it")
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the relay's log, for error messages.
func (p *relayProc) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// result is what the writers and the consumer saw.
type result struct {
	mu         sync.Mutex
	committed  map[string]time.Time // event id -> when its transaction's COMMIT returned
	consumed   map[string]time.Time // event id -> first arrival
	duplicates int
	firstWrite time.Time
	lastCommit time.Time
}

func (r *result) report(o Options) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{Mode: "throughput", Rate: o.Rate, Events: o.Events, Duplicates: r.duplicates}
	if o.Rate > 0 {
		rep.Mode = "paced"
	}
	lats := make([]time.Duration, 0, len(r.committed))
	var last time.Time
	for id, c := range r.committed {
		at, ok := r.consumed[id]
		if !ok {
			rep.Missing++
			continue
		}
		rep.Received++
		lats = append(lats, max(0, at.Sub(c)))
		if at.After(last) {
			last = at
		}
	}
	if rep.Received > 0 {
		d := last.Sub(r.firstWrite)
		rep.DurationMS = ms(d)
		rep.PerSecond = float64(rep.Received) / d.Seconds()
		rep.WritePerSecond = float64(len(r.committed)) / r.lastCommit.Sub(r.firstWrite).Seconds()
		slices.Sort(lats)
		q := func(p float64) float64 { return ms(lats[int(p*float64(len(lats)-1))]) }
		rep.P50MS, rep.P90MS, rep.P99MS, rep.MaxMS = q(0.50), q(0.90), q(0.99), q(1)
	}
	return rep
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// load writes o.Events events and consumes them until every one arrived.
func load(ctx context.Context, o Options, pool *pgxpool.Pool, brokers []string) (*result, error) {
	res := &result{committed: make(map[string]time.Time, o.Events), consumed: make(map[string]time.Time, o.Events)}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	cctx, stopConsumer := context.WithCancel(ctx)
	allIn := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(rec *kgo.Record) {
				id := ""
				for _, h := range rec.Headers {
					if h.Key == "ce_id" {
						id = string(h.Value)
						break
					}
				}
				res.mu.Lock()
				if _, seen := res.consumed[id]; seen {
					res.duplicates++
				} else {
					res.consumed[id] = now
					if len(res.consumed) == o.Events {
						close(allIn)
					}
				}
				res.mu.Unlock()
			})
		}
	})
	defer func() { stopConsumer(); wg.Wait() }()

	if err := write(ctx, o, pool, res); err != nil {
		return nil, err
	}
	select {
	case <-allIn:
		return res, nil
	case <-ctx.Done():
		res.mu.Lock()
		n := len(res.consumed)
		res.mu.Unlock()
		return nil, fmt.Errorf("relayload: %d of %d events arrived before the timeout", n, o.Events)
	}
}

// write commits o.Events events in transactions of o.Batch, from o.Writers connections,
// paced when o.Rate > 0.
func write(ctx context.Context, o Options, pool *pgxpool.Pool, res *result) error {
	txs := (o.Events + o.Batch - 1) / o.Batch
	next := make(chan int, o.Writers) // transaction numbers
	errs := make(chan error, o.Writers)
	var wg sync.WaitGroup
	for range o.Writers {
		wg.Go(func() {
			for n := range next {
				if err := writeTx(ctx, o, pool, res, n); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	res.mu.Lock()
	res.firstWrite = time.Now()
	res.mu.Unlock()
	var tick *time.Ticker
	if o.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) * float64(o.Batch) / float64(o.Rate)))
		defer tick.Stop()
	}
	var err error
feed:
	for n := range txs {
		if tick != nil && n > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		select {
		case next <- n:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// writeTx commits transaction n: its events go through shared/outbox, pipelined in one
// round trip (batchExec).
func writeTx(ctx context.Context, o Options, pool *pgxpool.Pool, res *result, n int) error {
	first := n * o.Batch
	count := min(o.Batch, o.Events-first)
	ids := make([]string, 0, count)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var b batchExec
		for i := first; i < first+count; i++ {
			ce, err := outbox.New("/myscrollr/connect/relayload", "com.myscrollr.connect.load.event", map[string]int{"n": i})
			if err != nil {
				return err
			}
			id, err := outbox.Write(ctx, &b, outbox.Event{
				AggregateType: "load", AggregateID: "agg-" + strconv.Itoa(i%o.Aggregates), CloudEvent: ce,
			})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return tx.SendBatch(ctx, &b.batch).Close()
	})
	if err != nil {
		return fmt.Errorf("relayload: write transaction %d: %w", n, err)
	}
	at := time.Now()
	res.mu.Lock()
	for _, id := range ids {
		res.committed[id] = at
	}
	res.lastCommit = at
	res.mu.Unlock()
	return nil
}

// batchExec is an outbox.Execer that queues the statements into a pgx.Batch.
type batchExec struct{ batch pgx.Batch }

func (b *batchExec) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	b.batch.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// PrintTable writes rep as an aligned table.
func PrintTable(w io.Writer, rep Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tevents\treceived\tdup\tduration\tevents/s\twrite/s\tp50\tp90\tp99\tmax\trelay cpu/event\t")
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0fms\t%.0f\t%.0f\t%.1fms\t%.1fms\t%.1fms\t%.1fms\t%.1fµs\t\n",
		rep.Mode, rep.Events, rep.Received, rep.Duplicates, rep.DurationMS, rep.PerSecond, rep.WritePerSecond,
		rep.P50MS, rep.P90MS, rep.P99MS, rep.MaxMS, rep.RelayCPUPerEvt)
	tw.Flush()
}

// findWorkspaceRoot is the repository root, or an error telling how to give it.
func findWorkspaceRoot() (string, error) {
	root, err := stack.FindRoot()
	if err != nil {
		return "", fmt.Errorf("relayload: %w; set WorkspaceDir (-workspace)", err)
	}
	return root, nil
}
