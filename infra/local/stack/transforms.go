package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/infra/local/demo"
	"github.com/myscrollr/connect/wasmhost"
)

// The demo integrations' WASM transforms (demo.Transforms: crypto-ticker's quotes go through
// the example quotes transform), so make dev's polled records reach connect.data normalized
// as a developer's would after PUT .../versions/{version}/transform.
//
// buildTransforms compiles each Go transform package for wasip1 as a reactor
// (-buildmode=c-shared, as make transforms does) while the functions build: two go builds at
// once, and the Go build cache makes both cheap after the first run. storeDemoTransforms then
// validates each module with wasmhost exactly as the registry's upload does (Host.Load: size,
// format, imports, exports, a first instance and its ABI version) and stores it for the
// listing's demo.Version in integration_transforms with its sha256, size and ABI version.
// Nothing is skipped: a transform that does not build or is refused fails Start with the reason.
//
// The validation runs in process (this binary is no wasmhost worker) with a compilation cache
// of its own in the work directory, so a make dev that keeps its work directory validates from
// the cache. It cannot warm the functions' WASM_CACHE_DIR: their worker processes compile with
// close-on-context-done off, which is part of wazero's cache key.

// transformFile is where buildTransforms puts the module of a Go package.
func transformFile(dir, pkg string) string {
	return filepath.Join(dir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg)+".wasm")
}

// buildTransforms builds each Go package in pkgs (deduplicated) to transformFile(dir, pkg).
func buildTransforms(ctx context.Context, root, dir string, pkgs []string, log *slog.Logger) error {
	if len(pkgs) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	for _, pkg := range pkgs {
		cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", transformFile(dir, pkg), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("stack: build the demo transform %s (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared): %w\n%s", pkg, err, out)
		}
	}
	log.Info("demo transforms built", "count", len(pkgs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// demoTransformPackages are the distinct Go packages of the demo's transforms, sorted.
func demoTransformPackages() []string {
	pkgs := slices.Sorted(maps.Values(demo.Transforms()))
	return slices.Compact(pkgs)
}

// transformDir is where this run's transform modules are built.
func (s *Stack) transformDir() string { return filepath.Join(s.workDir, "transforms") }

// storeDemoTransforms validates the built module of every demo integration that names a
// transform and stores it for its demo.Version (replacing what an earlier run against the
// same DATABASE_URL stored), in one transaction.
func (s *Stack) storeDemoTransforms(ctx context.Context) error {
	if s.demo == nil {
		return nil
	}
	var named []demo.Integration
	for _, in := range s.demo.Integrations {
		if in.Transform != "" {
			named = append(named, in)
		}
	}
	if len(named) == 0 {
		return nil
	}
	start := time.Now()
	host, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: filepath.Join(s.workDir, "wasm-cache-stack"),
		Isolation: wasmhost.IsolationInProcess, Logger: s.log})
	if err != nil {
		return fmt.Errorf("stack: demo transforms: %w", err)
	}
	defer host.Close(context.WithoutCancel(ctx))
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return fmt.Errorf("stack: demo transforms: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, in := range named {
			wasm, err := os.ReadFile(transformFile(s.transformDir(), in.Transform))
			if err != nil {
				return fmt.Errorf("stack: transform of %s: %w", in.Name, err)
			}
			m, err := host.Load(ctx, wasm)
			if me := (*wasmhost.ModuleError)(nil); errors.As(err, &me) {
				return fmt.Errorf("stack: the transform of %s (%s) is refused as the registry would refuse it: %s", in.Name, in.Transform, me.Reason)
			}
			if err != nil {
				return fmt.Errorf("stack: transform of %s: %w", in.Name, err)
			}
			info := m.Info()
			tag, err := tx.Exec(ctx, `INSERT INTO integration_transforms (integration_id, version, module, sha256, size, abi_version)
				SELECT id, $2, $3, $4, $5, $6 FROM integrations WHERE name = $1
				ON CONFLICT (integration_id, version) DO UPDATE SET module = EXCLUDED.module, sha256 = EXCLUDED.sha256,
					size = EXCLUDED.size, abi_version = EXCLUDED.abi_version, created_at = now()`,
				in.Name, demo.Version, wasm, info.SHA256, info.Size, info.ABIVersion)
			if err != nil {
				return fmt.Errorf("stack: store the transform of %s: %w", in.Name, err)
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("stack: store the transform of %s: the integration is not seeded", in.Name)
			}
			s.log.Info("demo transform stored", "integration", in.Name, "version", demo.Version, "package", in.Transform,
				"sha256", info.SHA256, "size", info.Size, "abi_version", info.ABIVersion)
		}
		s.log.Info("demo transforms validated and stored", "count", len(named), "took", time.Since(start).Round(time.Millisecond))
		return nil
	})
}
