// Package stack runs the whole marketplace on one machine: what `make dev` starts and what the
// end-to-end tests start in process.
//
// It starts, each unless an external one is configured: a throwaway PostgreSQL cluster
// (DATABASE_URL), franz-go's in-process Kafka cluster kfake (KAFKA_BROKERS) and stripe-mock
// (STRIPE_API_BASE). It applies the migrations (as the cluster's owner, as a deployment's
// migration Job does), creates in its own cluster a login role per function (shared/db
// CreateLogin) for the Secrets connect-db-<function>, builds every function under functions/
// and runs each as its own process on a free port, and serves one front door that routes
// /v1/... to the functions. With the demo it also builds the demo integrations' WASM
// transforms and stores them as the registry would (transforms.go). Stop (or cancelling the context given to Start) stops every
// process and removes every temporary directory.
//
// Defaults follow docs/architecture.md: front door 127.0.0.1:8080, Kafka 127.0.0.1:9092,
// stripe-mock 127.0.0.1:12111. Tests set every address to port 0 to get free ports.
package stack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/myscrollr/connect/infra/local/demo"
	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/pgcluster"
)

// Config says what to start. The zero value is not valid; use FromEnv or fill Root.
type Config struct {
	// Root is the repository root (holds functions/, infra/).
	Root string
	// Addr is the front door's listen address (FRONT_DOOR_ADDR, default 127.0.0.1:8080).
	Addr string
	// DatabaseURL uses an existing PostgreSQL (DATABASE_URL); empty starts a throwaway cluster.
	DatabaseURL string
	// KafkaBrokers uses an existing Kafka (KAFKA_BROKERS, comma-separated); empty starts kfake.
	KafkaBrokers []string
	// KafkaAddr is where kfake listens (KAFKA_ADDR, default 127.0.0.1:9092).
	KafkaAddr string
	// StripeAPIBase uses an existing Stripe API (STRIPE_API_BASE); empty starts stripe-mock.
	StripeAPIBase string
	// StripeMockAddr is where stripe-mock listens for HTTP (STRIPE_MOCK_ADDR, default
	// 127.0.0.1:12111); its HTTPS port is the next one.
	StripeMockAddr string
	// LogtoEndpoint uses a Logto (LOGTO_ENDPOINT); empty runs the development identity server
	// on IdentityAddr (IDENTITY_ADDR, default 127.0.0.1:3001, issuer <endpoint>/oidc).
	LogtoEndpoint string
	IdentityAddr  string
	// APIResource is the API resource indicator, the audience of access tokens
	// (LOGTO_API_RESOURCE, default https://api.myscrollr.local).
	APIResource string
	// WebhookSigningKey is the Logto webhook signing key given to logto-webhook
	// (LOGTO_WEBHOOK_SIGNING_KEY); empty generates one per run.
	WebhookSigningKey string
	// M2MAppID and M2MAppSecret are the Management API credentials used with an external Logto
	// (LOGTO_M2M_APP_ID, LOGTO_M2M_APP_SECRET).
	M2MAppID, M2MAppSecret string
	// ManifestsDir holds the Knative manifests the dispatcher follows; default
	// <Root>/infra/knative.
	ManifestsDir string
	// ExtraServices maps Knative Service names to URLs of servers run outside the stack
	// (tests register recorders this way). They take precedence over functions.
	ExtraServices map[string]string
	// DisablePings turns the PingSource schedules off (tests that drive ticks themselves).
	DisablePings bool
	// Demo runs and lists the demo integrations (package demo); FromEnv turns it on unless
	// DEMO=off.
	Demo bool
	// Functions limits which functions run (FUNCTIONS, comma-separated); empty runs all.
	Functions []string
	// WorkDir holds binaries and temporary state; empty makes a temporary directory that Stop
	// removes.
	WorkDir string
	Logger  *slog.Logger
	// ProcessOutput receives the functions' own log lines, prefixed with their names; nil
	// drops them (a function that fails to start still has its last lines in the error).
	ProcessOutput io.Writer
}

// FromEnv reads the configuration from the environment, with the local defaults.
func FromEnv(root string) Config {
	c := Config{
		Root:              root,
		Addr:              envOr("FRONT_DOOR_ADDR", "127.0.0.1:8080"),
		DatabaseURL:       os.Getenv("DATABASE_URL"),
		KafkaAddr:         envOr("KAFKA_ADDR", "127.0.0.1:9092"),
		StripeAPIBase:     os.Getenv("STRIPE_API_BASE"),
		StripeMockAddr:    envOr("STRIPE_MOCK_ADDR", "127.0.0.1:12111"),
		LogtoEndpoint:     os.Getenv("LOGTO_ENDPOINT"),
		IdentityAddr:      envOr("IDENTITY_ADDR", "127.0.0.1:3001"),
		APIResource:       os.Getenv("LOGTO_API_RESOURCE"),
		M2MAppID:          os.Getenv("LOGTO_M2M_APP_ID"),
		M2MAppSecret:      os.Getenv("LOGTO_M2M_APP_SECRET"),
		WebhookSigningKey: os.Getenv("LOGTO_WEBHOOK_SIGNING_KEY"),
		Demo:              os.Getenv("DEMO") != "off",
	}
	if b := os.Getenv("KAFKA_BROKERS"); b != "" {
		c.KafkaBrokers = strings.Split(b, ",")
	}
	if f := os.Getenv("FUNCTIONS"); f != "" {
		c.Functions = strings.Split(f, ",")
	}
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Stack is a running marketplace.
type Stack struct {
	cfg Config
	log *slog.Logger

	// URL is the front door, DatabaseURL the database, Brokers the Kafka bootstrap servers,
	// StripeAPIBase the Stripe API the functions use.
	URL           string
	DatabaseURL   string
	Brokers       []string
	StripeAPIBase string
	// LogtoEndpoint is the identity server (issuer LogtoEndpoint+"/oidc"); APIResource the
	// audience of access tokens.
	LogtoEndpoint string
	APIResource   string
	// WebhookSigningKey is the Logto webhook signing key logto-webhook verifies
	// (LOGTO_WEBHOOK_SIGNING_KEY, or a random one per run).
	WebhookSigningKey string
	// Functions maps a function name to its base URL (behind the front door).
	Functions map[string]string

	workDir   string
	ownWork   bool
	pg        *pgcluster.Cluster
	kafka     *kfake.Cluster
	idp       *idp.Server
	m2mID     string
	m2mSecret string
	// clientSecretKeys seal integrations' client secrets (CLIENT_SECRET_KEYS, or one random
	// key per run).
	clientSecretKeys string
	// lifecycleSigningKeys sign lifecycle deliveries (LIFECYCLE_SIGNING_KEYS, or one random
	// ed25519 key per run); stripeWebhookSecret verifies Stripe webhooks
	// (STRIPE_WEBHOOK_SECRET, or a random whsec_ per run).
	lifecycleSigningKeys string
	stripeWebhookSecret  string

	// functionDB maps a function to the URL of its least-privilege login role (own cluster
	// only); see functionDatabaseURL.
	functionDB map[string]string

	stopIdentity func()
	manifests    *knative.Manifests // what the dispatcher follows
	services     *knative.Manifests // infra/knative: the functions' Services
	// senderIssuer issues sender tokens (the dev identity server; its own instance when
	// LOGTO_ENDPOINT points at a Logto); tokens hands them to the dispatcher.
	senderIssuer   string
	tokens         *tokenSource
	eventingSecret string
	demo           *demo.Servers
	stopEventing   func() error
	procs          []*process
	frontDoor      *http.Server
	stopOnce       sync.Once
	stopErr        error
}

// Start brings the marketplace up. On error everything started so far is stopped.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	s := &Stack{cfg: cfg, log: cfg.Logger, Functions: map[string]string{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.start(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context) error {
	if s.cfg.Root == "" {
		return errors.New("stack: Root (the repository root) is required")
	}
	s.workDir = s.cfg.WorkDir
	if s.workDir == "" {
		d, err := os.MkdirTemp("", "connect-dev-")
		if err != nil {
			return err
		}
		s.workDir, s.ownWork = d, true
	}

	// The functions' Services (and so their settings) always come from infra/knative; the
	// dispatcher follows ManifestsDir when a test gives its own eventing manifests.
	deployed := filepath.Join(s.cfg.Root, "infra", "knative")
	services, err := knative.Load(deployed)
	if err != nil {
		return err
	}
	s.services, s.manifests = services, services
	if s.cfg.ManifestsDir != "" && filepath.Clean(s.cfg.ManifestsDir) != deployed {
		if s.manifests, err = knative.Load(s.cfg.ManifestsDir); err != nil {
			return err
		}
	}

	// Build while the servers start: compiling dominates start-up.
	names, err := s.functionNames()
	if err != nil {
		return err
	}
	built := make(chan error, 1)
	go func() { built <- buildFunctions(ctx, s.cfg.Root, filepath.Join(s.workDir, "bin"), names, s.log) }()
	// The demo's WASM transforms build beside them (transforms.go).
	var transformPkgs []string
	if s.cfg.Demo {
		transformPkgs = demoTransformPackages()
	}
	transformsBuilt := make(chan error, 1)
	go func() { transformsBuilt <- buildTransforms(ctx, s.cfg.Root, s.transformDir(), transformPkgs, s.log) }()

	serversErr := s.startServers(ctx)
	buildErr := <-built
	transformErr := <-transformsBuilt
	if err := errors.Join(serversErr, buildErr, transformErr); err != nil {
		return err
	}
	if err := s.storeDemoTransforms(ctx); err != nil {
		return err
	}
	if err := s.startStripe(ctx); err != nil {
		return err
	}
	if err := s.writeSecrets(); err != nil {
		return err
	}
	// The front door's address is known before the functions start (some settings name it,
	// e.g. the install callback); it serves once everything behind it is ready.
	door, err := s.listenFrontDoor()
	if err != nil {
		return err
	}
	serving := false
	defer func() {
		if !serving {
			door.Close()
		}
	}()
	if err := s.registerDemoApps(ctx); err != nil {
		return err
	}
	if s.demo != nil {
		// The demo apps verify lifecycle deliveries with the keys notify publishes.
		s.demo.SetLifecycleKeysURL(s.URL + "/v1/lifecycle/keys")
	}
	for _, name := range names {
		env, err := s.functionEnv(name)
		if err != nil {
			return err
		}
		p, err := startFunction(ctx, name, filepath.Join(s.workDir, "bin", name), env, s.cfg.ProcessOutput, s.log)
		if err != nil {
			return err
		}
		s.procs = append(s.procs, p)
		s.Functions[name] = p.url
	}
	for _, p := range s.procs {
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	if err := s.startEventing(ctx); err != nil {
		return err
	}
	s.serveFrontDoor(door)
	serving = true
	return nil
}

// startServers starts what the functions need: PostgreSQL (migrated), the demo integrations,
// Kafka and the identity server.
func (s *Stack) startServers(ctx context.Context) error {
	if err := s.startPostgres(ctx); err != nil {
		return err
	}
	if err := s.startDemo(ctx); err != nil {
		return err
	}
	if err := s.startKafka(); err != nil {
		return err
	}
	s.WebhookSigningKey = s.cfg.WebhookSigningKey
	if s.WebhookSigningKey == "" {
		s.WebhookSigningKey = randomHex(24)
	}
	s.clientSecretKeys = os.Getenv("CLIENT_SECRET_KEYS")
	if s.clientSecretKeys == "" {
		key := make([]byte, 32)
		rand.Read(key)
		s.clientSecretKeys = "dev:" + base64.StdEncoding.EncodeToString(key)
	}
	s.lifecycleSigningKeys = os.Getenv("LIFECYCLE_SIGNING_KEYS")
	if s.lifecycleSigningKeys == "" {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		s.lifecycleSigningKeys = "dev1:" + base64.StdEncoding.EncodeToString(seed)
	}
	s.stripeWebhookSecret = os.Getenv("STRIPE_WEBHOOK_SECRET")
	if s.stripeWebhookSecret == "" {
		s.stripeWebhookSecret = "whsec_" + randomHex(24)
	}
	return s.startIdentity(ctx)
}

func (s *Stack) functionNames() ([]string, error) {
	mains, err := filepath.Glob(filepath.Join(s.cfg.Root, "functions", "*", "main.go"))
	if err != nil {
		return nil, err
	}
	var all []string
	for _, m := range mains {
		all = append(all, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(all)
	if len(s.cfg.Functions) == 0 {
		return all, nil
	}
	for _, want := range s.cfg.Functions {
		found := false
		for _, n := range all {
			found = found || n == want
		}
		if !found {
			return nil, fmt.Errorf("stack: FUNCTIONS names %q, but functions/%s/main.go does not exist (have %s)", want, want, strings.Join(all, ", "))
		}
	}
	return s.cfg.Functions, nil
}

func (s *Stack) startPostgres(ctx context.Context) error {
	s.DatabaseURL = s.cfg.DatabaseURL
	if s.DatabaseURL == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{Parent: s.workDir, Logger: s.log})
		if err != nil {
			return err
		}
		s.pg = c
		s.DatabaseURL = c.URL("postgres")
	}
	if _, err := migrate.UpWithLog(ctx, s.DatabaseURL, s.log); err != nil {
		return err
	}
	if s.pg == nil {
		return nil // an external server: its one URL serves every function
	}
	// The throwaway cluster trusts local connections, so each function's login role needs no
	// password: functions connect as their own least-privilege roles, as in a deployment.
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return fmt.Errorf("stack: function roles: %w", err)
	}
	defer conn.Close(ctx)
	s.functionDB = map[string]string{}
	for _, fn := range db.Functions {
		if err := db.CreateLogin(ctx, conn, fn, db.LoginRole(fn)); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		u, err := db.URLAs(s.DatabaseURL, db.LoginRole(fn))
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		s.functionDB[fn] = u
	}
	return nil
}

// startDemo runs the demo integrations and lists them in the catalog.
func (s *Stack) startDemo(ctx context.Context) error {
	if !s.cfg.Demo {
		return nil
	}
	d, err := demo.Start(s.log, nil)
	if err != nil {
		return err
	}
	s.demo = d
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return fmt.Errorf("stack: seed demo: %w", err)
	}
	defer conn.Close(ctx)
	return d.Seed(ctx, conn)
}

// Topics every run has.
var Topics = []string{"connect.events", "connect.events.dlq", "connect.data", "connect.data.dlq"}

func (s *Stack) startKafka() error {
	if len(s.cfg.KafkaBrokers) > 0 {
		s.Brokers = s.cfg.KafkaBrokers
		return nil
	}
	_, portStr, err := net.SplitHostPort(s.cfg.KafkaAddr)
	if err != nil {
		return fmt.Errorf("stack: KAFKA_ADDR %q: %w", s.cfg.KafkaAddr, err)
	}
	var port int
	fmt.Sscan(portStr, &port)
	// The KafkaSources' topics exist from the start, so their consumers find them at once (a
	// topic created later by its first producer is seen only at the next metadata refresh).
	topics := slices.Clone(Topics)
	for _, ks := range s.manifests.KafkaSources {
		topics = append(topics, ks.Topics...)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(8), kfake.SeedTopics(8, topics...))
	if err != nil {
		return fmt.Errorf("stack: start kafka on %s: %w", s.cfg.KafkaAddr, err)
	}
	s.kafka = c
	s.Brokers = c.ListenAddrs()
	s.log.Info("kafka started (kfake)", "brokers", strings.Join(s.Brokers, ","))
	return nil
}

// stopGrace is how long Stop lets a process drain after SIGTERM before it kills it.
const stopGrace = 30 * time.Second

// Stop stops every process and server and removes the temporary directories.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.frontDoor != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, s.frontDoor.Shutdown(ctx))
			cancel()
		}
		if s.stopEventing != nil {
			errs = append(errs, s.stopEventing())
		}
		// All at once, as Knative terminates pods: each gets SIGTERM and the grace Knative would
		// give it (timeoutSeconds covers the relay's own drain of up to 20 s) before SIGKILL.
		stopErrs := make([]error, len(s.procs))
		var wg sync.WaitGroup
		for i, p := range s.procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stopErrs[i] = p.stop(stopGrace)
			}()
		}
		wg.Wait()
		errs = append(errs, stopErrs...)
		if s.kafka != nil {
			s.kafka.Close()
		}
		if s.demo != nil {
			s.demo.Stop()
		}
		if s.stopIdentity != nil {
			s.stopIdentity()
		}
		if s.pg != nil {
			errs = append(errs, s.pg.Stop())
		}
		if s.ownWork {
			errs = append(errs, os.RemoveAll(s.workDir))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// PIDs are the process ids of every child process (functions, helpers, PostgreSQL).
func (s *Stack) PIDs() []int {
	var pids []int
	for _, p := range s.procs {
		pids = append(pids, p.pid())
	}
	if s.pg != nil {
		pids = append(pids, s.pg.PID())
	}
	return pids
}

// Kill sends SIGKILL to the running process of a function, as a crash would; the stack starts
// it again (tests use it to show that nothing in flight is lost).
func (s *Stack) Kill(function string) error {
	for _, p := range s.procs {
		if p.name == function {
			cmd, _ := p.current()
			return cmd.Process.Kill()
		}
	}
	return fmt.Errorf("stack: %s is not running in this stack", function)
}

// WorkDir is the directory holding the binaries and temporary state.
func (s *Stack) WorkDir() string { return s.workDir }

// FindRoot walks up from the working directory to the repository root: the directory that
// holds go.work.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory; run from inside the repository")
		}
		dir = parent
	}
}
