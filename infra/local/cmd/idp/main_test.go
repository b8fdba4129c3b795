package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/myscrollr/connect/shared/idp"
)

func TestMintSubcommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{DevEndpoints: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	var out bytes.Buffer
	err = run(context.Background(), []string{"mint", "-url", strings.TrimSuffix(s.Issuer(), "/oidc"), "-sub", "u1", "-scope", "dashboard:read"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(strings.TrimSpace(out.String()), ".") != 2 {
		t.Fatalf("not a JWT: %q", out.String())
	}
	if err := run(context.Background(), []string{"mint"}, &out); err == nil || !strings.Contains(err.Error(), "-sub") {
		t.Fatalf("missing -sub: %v", err)
	}
}
