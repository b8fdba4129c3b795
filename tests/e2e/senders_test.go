package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/infra/local/stack"
	"github.com/myscrollr/connect/shared/idp"
)

// uninstallAudience is the audience the uninstall Service declares (EVENTS_OIDC_AUDIENCE) and
// its Triggers name.
const uninstallAudience = "serving.knative.dev/service/connect/uninstall"

// forgeUserDeleted sends a well-formed user.deleted event for user the ways an attacker could:
// straight to the function's port without a token, with a user's access token, with a sender
// token for another function, and through the front door. Every attempt is refused.
func forgeUserDeleted(t *testing.T, ctx context.Context, s *stack.Stack, user string) {
	t.Helper()
	e := cloudevents.New()
	e.SetID("forged-" + user)
	e.SetSource(events.Source("logto-webhook"))
	e.SetType(events.TypeUserDeleted)
	e.SetTime(time.Now())
	if err := e.SetData(cloudevents.ApplicationJSON, events.UserDeleted{UserID: user, DeletedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	send := func(base, token string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	userToken, err := s.Identity().Mint(idp.TokenRequest{Subject: user, Scopes: []string{"dashboard:read", "dashboard:write"}})
	if err != nil {
		t.Fatal(err)
	}
	// What the eventing client would hold for another function: right issuer and subject,
	// another audience.
	otherAudience, err := s.Identity().Mint(idp.TokenRequest{Subject: stack.EventingClientID, ClientID: stack.EventingClientID,
		Audience: "serving.knative.dev/service/connect/catalog"})
	if err != nil {
		t.Fatal(err)
	}
	fn := s.Functions["uninstall"]
	for name, token := range map[string]string{"no token": "", "a user's token": userToken, "another function's sender token": otherAudience} {
		if code := send(fn, token); code != http.StatusUnauthorized {
			t.Errorf("forged user.deleted with %s, straight to uninstall: %d, want 401", name, code)
		}
	}
	// The front door exposes /v1/... only: no route reaches a function's /events.
	for _, path := range []string{"", "/v1/integrations/../.."} {
		if code := send(s.URL+path, ""); code/100 == 2 {
			t.Errorf("forged user.deleted through the front door (%q) answered %d", path, code)
		}
	}
	// The same event with a sender token for uninstall's audience, as the dispatcher sends it,
	// would be accepted: that path is exercised by the caller through the real dispatcher.
	if _, err := s.SenderToken(ctx, uninstallAudience); err != nil {
		t.Fatalf("the dispatcher cannot obtain a sender token for uninstall: %v", err)
	}
}

func requireCount(t *testing.T, ctx context.Context, conn *pgx.Conn, want int, query string, args ...any) {
	t.Helper()
	var got int
	if err := conn.QueryRow(ctx, query, args...).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s: %d, want %d", query, got, want)
	}
}

// listensOnlyOnLoopback checks, from /proc/net/tcp and tcp6 (no connection is made), that every
// socket listening on a function's port is bound to 127.0.0.1.
func listensOnlyOnLoopback(t *testing.T, s *stack.Stack) {
	t.Helper()
	for name, base := range s.Functions {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		port, err := strconv.Atoi(u.Port())
		if err != nil {
			t.Fatal(err)
		}
		addrs := listeners(t, port)
		if len(addrs) == 0 {
			t.Errorf("%s: nothing listens on port %d", name, port)
		}
		for _, a := range addrs {
			if a != "0100007F" { // 127.0.0.1 in /proc/net/tcp's little-endian hex
				t.Errorf("%s listens on %s:%d, want 127.0.0.1 only", name, a, port)
			}
		}
	}
}

// listeners returns the local addresses (hex, as /proc/net shows them) of the listening TCP
// sockets on port.
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, p, ok := strings.Cut(fields[1], ":")
			if ok && p == fmt.Sprintf("%04X", port) {
				out = append(out, addr)
			}
		}
		f.Close()
	}
	return out
}

// secretFromFile reads key from the KEY=value secrets file the stack writes (make dev names it).
func secretFromFile(t *testing.T, path, key string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("secrets file: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	t.Fatalf("%s has no %s", path, key)
	return ""
}
