package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
)

// make dev's outbound paths, on the real PingSource schedule (a tick a minute): within two
// minutes every demo listing shows a health status other than unknown, and the demo pull
// source's records are polled, stored and announced on connect.data by the relay. The
// rejections route is reached through the front door and wants a token.
func TestHealthAndPollEndToEnd(t *testing.T) {
	cfg := testConfig(t, "catalog", "health-probe", "poll", "relay")
	cfg.Demo = true
	s := startStack(t, cfg)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The announced records: connect.data, from the beginning.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumeTopics(events.TopicData),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gotData := make(chan events.DataReceived, 1)
	go func() {
		for ctx.Err() == nil {
			for _, r := range cl.PollFetches(ctx).Records() {
				e, err := kafkace.Decode(r)
				if err != nil || e.Type() != events.TypeDataReceived {
					t.Errorf("connect.data record is not a data.received CloudEvent: %v (type %q)", err, e.Type())
					continue
				}
				var d events.DataReceived
				if err := e.DataAs(&d); err != nil {
					t.Errorf("data.received data: %v", err)
					continue
				}
				select {
				case gotData <- d:
				default:
				}
			}
		}
	}()

	type listing struct {
		Name   string `json:"name"`
		Health struct {
			Status string `json:"status"`
		} `json:"health"`
	}
	statuses := func() map[string]string {
		resp, err := http.Get(s.URL + "/v1/integrations?limit=50")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page struct{ Items []listing }
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/integrations = %d: %v", resp.StatusCode, err)
		}
		out := map[string]string{}
		for _, it := range page.Items {
			out[it.Name] = it.Health.Status
		}
		return out
	}
	for {
		st := statuses()
		known := len(st) == 4
		for _, status := range st {
			known = known && status != "unknown"
		}
		if known {
			t.Logf("every demo listing has a status after %s: %v", time.Since(start).Round(time.Second), st)
			for name, status := range st {
				if status != "healthy" {
					t.Errorf("%s is %s; the demo integrations answer their health checks", name, status)
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %s the catalog still shows %v", time.Since(start).Round(time.Second), st)
		case <-time.After(time.Second): // polling a process we do not control, with a deadline
		}
	}

	select {
	case d := <-gotData:
		if d.Name != "crypto-ticker" || d.DeliveryMode != "pull" || len(d.Records) == 0 {
			t.Fatalf("data.received %+v; want crypto-ticker's pulled records", d)
		}
	case <-ctx.Done():
		t.Fatal("no data.received reached connect.data")
	}

	resp, err := http.Get(s.URL + "/v1/developer/integrations/crypto-ticker/rejections")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("rejections without a token = %d %s; want a 401 problem from poll", resp.StatusCode, body)
	}

	// The demo's developer sees the source polled and nothing refused; another developer sees
	// nothing at all.
	rejections := func(sub string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/developer/integrations/crypto-ticker/rejections", nil)
		req.Header.Set("Authorization", "Bearer "+devToken(t, s.LogtoEndpoint, sub, "integrations:write"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	code, body := rejections("demo-developer")
	var view struct {
		Integration string `json:"integration"`
		Source      *struct {
			LastError     *string    `json:"last_error"`
			LastSuccessAt *time.Time `json:"last_success_at"`
		} `json:"source"`
		Items []json.RawMessage `json:"items"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &view) != nil || view.Integration != "crypto-ticker" ||
		view.Source == nil || view.Source.LastSuccessAt == nil || view.Source.LastError != nil || len(view.Items) != 0 {
		t.Fatalf("the developer's rejections = %d %s; want the source polled, no error, nothing refused", code, body)
	}
	if code, body := rejections("someone-else"); code != http.StatusNotFound {
		t.Fatalf("another developer's view = %d %s; want 404", code, body)
	}
}

// devToken mints an access token for sub with scope at the development identity server.
func devToken(t *testing.T, endpoint, sub, scope string) string {
	t.Helper()
	in, _ := json.Marshal(map[string]string{"sub": sub, "scope": scope})
	resp, err := http.Post(endpoint+"/dev/token", "application/json", strings.NewReader(string(in)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("dev token: %d %v", resp.StatusCode, err)
	}
	return out.AccessToken
}
