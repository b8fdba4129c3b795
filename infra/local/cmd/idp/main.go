// Command idp runs the development identity server, or mints a test token
// from a running one.
//
//	idp [-addr 127.0.0.1:3001] [-clients clients.json]   serve
//	idp mint -sub u1 -scope "dashboard:read" [-client app] [-aud URL] [-url http://127.0.0.1:3001]
//
// Serving seeds a Management API client (LOGTO_M2M_APP_ID /
// LOGTO_M2M_APP_SECRET, default "m2m-dev" / "m2m-dev-secret") plus the
// clients of the -clients file, a JSON array of idp.Client.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/myscrollr/connect/shared/idp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "idp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "mint" {
		return mint(ctx, args[1:], stdout)
	}
	fs := flag.NewFlagSet("idp", flag.ContinueOnError)
	addr := fs.String("addr", idp.DefaultAddr, "listen address")
	clientsFile := fs.String("clients", "", "JSON file with extra clients (array of idp.Client)")
	dev := fs.Bool("dev", true, "enable POST /dev/token and POST /dev/rotate-key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	clients := []idp.Client{{
		ID: envOr("LOGTO_M2M_APP_ID", "m2m-dev"), Secret: envOr("LOGTO_M2M_APP_SECRET", "m2m-dev-secret"),
		Name: "MyScrollr functions", Type: "MachineToMachine", ManagementAPI: true,
	}}
	if *clientsFile != "" {
		b, err := os.ReadFile(*clientsFile)
		if err != nil {
			return err
		}
		var extra []idp.Client
		if err := json.Unmarshal(b, &extra); err != nil {
			return fmt.Errorf("-clients %s: %w", *clientsFile, err)
		}
		clients = append(clients, extra...)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	s, done, err := idp.Start(ctx, *addr, idp.Config{Clients: clients, DevEndpoints: *dev, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "issuer %s\nmanagement client %s\n", s.Issuer(), clients[0].ID)
	return <-done
}

func mint(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mint", flag.ContinueOnError)
	base := fs.String("url", "http://"+idp.DefaultAddr, "base URL of the running server")
	sub := fs.String("sub", "", "subject (user id), required")
	scope := fs.String("scope", "", "space-separated scopes")
	client := fs.String("client", "", "client_id claim")
	aud := fs.String("aud", "", "audience (default the MyScrollr API resource)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("mint: -sub is required")
	}
	body, _ := json.Marshal(map[string]any{"sub": *sub, "scope": *scope, "client_id": *client, "aud": *aud,
		"ttl_seconds": int64(ttl.Seconds())})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*base, "/")+"/dev/token", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mint: %s: %s", resp.Status, b)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	fmt.Fprintln(stdout, out.AccessToken)
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
