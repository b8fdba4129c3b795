// Package pgcluster starts a throwaway PostgreSQL server: a fresh cluster in a temporary
// directory, listening only on a unix socket inside that directory, removed on Stop. make dev,
// the tests and the benchmarks use it when no DATABASE_URL is given.
//
// The server binaries are found through $PG_BIN, then pg_config --bindir, then the highest
// /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so when the caller is root the
// cluster is created and run as the "postgres" user (the directory is handed to that user).
// The server is started as a direct child with a parent-death signal, so a killed caller does
// not leave a server running.
//
// The cluster is tuned for throwaway use (fsync off) and for the relay (wal_level logical).
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure Start. The zero value works.
type Options struct {
	// Parent is the directory the cluster's temporary directory is made in; default
	// os.TempDir(). Ignored when running as root (the postgres user could not reach it).
	Parent string
	// Port names the socket file (.s.PGSQL.<port>); default 5432. No TCP port is opened.
	Port int
	// Settings are extra "name=value" server settings (postgres -c).
	Settings []string
	// Logger receives start/stop lines; nil discards them.
	Logger *slog.Logger
	// StartTimeout bounds initdb plus start; default 60s.
	StartTimeout time.Duration
}

// Cluster is a running throwaway server.
type Cluster struct {
	Dir  string // temporary directory: data/ and the socket
	Port int
	opts Options
	bin  string
	cred *syscall.Credential
	log  *slog.Logger

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start creates and starts a cluster. Call Stop to shut it down and remove its directory.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Port == 0 {
		opts.Port = 5432
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	parent := opts.Parent
	if os.Geteuid() == 0 {
		// The server runs as postgres, which must be able to reach the directory; a parent made
		// by MkdirTemp (mode 0700, root) is not traversable, os.TempDir() is.
		parent = ""
	}
	dir, err := os.MkdirTemp(parent, "connect-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: temp dir: %w", err)
	}
	c := &Cluster{Dir: dir, Port: opts.Port, opts: opts, bin: bin, log: log}
	if os.Geteuid() == 0 {
		cred, err := postgresUser()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgcluster: chown %s: %w", dir, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	initdb := c.command(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgcluster: initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	log.Info("postgresql started", "dir", dir, "url", c.URL("postgres"))
	return c, nil
}

// URL is the connection URL of database on this cluster, as user postgres over the socket.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", database, c.Dir, c.Port)
}

// Stop shuts the server down (fast shutdown) and removes the cluster's directory.
func (c *Cluster) Stop() error {
	err := c.shutdown(syscall.SIGINT, 30*time.Second)
	if rmErr := os.RemoveAll(c.Dir); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}

// Restart stops the server (fast shutdown: clients are disconnected) and starts it again on
// the same data. Fault-injection tests use it.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.shutdown(syscall.SIGINT, 30*time.Second); err != nil {
		return err
	}
	return c.start(ctx)
}

// Kill stops the server with an immediate shutdown (as a crash would) and starts it again;
// the server runs crash recovery.
func (c *Cluster) Kill(ctx context.Context) error {
	if err := c.shutdown(syscall.SIGQUIT, 30*time.Second); err != nil {
		return err
	}
	return c.start(ctx)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

func (c *Cluster) start(ctx context.Context) error {
	args := []string{"-D", c.dataDir(), "-k", c.Dir, "-p", strconv.Itoa(c.Port),
		"-c", "listen_addresses=",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=on",
		"-c", "wal_level=logical", "-c", "max_wal_senders=20", "-c", "max_replication_slots=20",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB",
		"-c", "log_min_messages=warning", "-c", "logging_collector=off"}
	for _, s := range c.opts.Settings {
		args = append(args, "-c", s)
	}
	// The server must outlive ctx (which only bounds start-up), so it gets its own command.
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	logf, err := os.Create(filepath.Join(c.Dir, "server.log"))
	if err != nil {
		return fmt.Errorf("pgcluster: server log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgcluster: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()

	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-done:
			logText, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
			return fmt.Errorf("pgcluster: postgres exited during start-up: %s", strings.TrimSpace(string(logText)))
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: postgres not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) shutdown(sig syscall.Signal, timeout time.Duration) error {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("pgcluster: postgres did not stop in time; killed")
	}
}

// BinDir finds the directory of the PostgreSQL server binaries.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("pgcluster: PG_BIN=%s has no initdb: %w", d, err)
		}
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries not found: install them (Debian: postgresql) or set PG_BIN to the directory holding initdb and postgres, or set DATABASE_URL")
}

func versionOf(initdbPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdbPath))))
	return v
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("pgcluster: running as root needs a \"postgres\" user to run the server as (PostgreSQL refuses root)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// PID is the process id of the running server (postmaster), or 0 when it is stopped.
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}
