package runtime_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/myscrollr/connect/shared/runtime"
)

func readSample(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lambdaFunction(rc *recorder) runtime.Function {
	mux := http.NewServeMux()
	mux.HandleFunc("/my/path", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c, _ := r.Cookie("session")
		session := ""
		if c != nil {
			session = c.Value
		}
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1"})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "query": r.URL.Query(), "header1": r.Header.Get("Header1"),
			"cookies": len(r.Cookies()), "session": session, "body": string(body), "host": r.Host,
			"request_id": r.Header.Get("X-Request-Id"),
		})
	})
	mux.HandleFunc("GET /bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte{0, 1, 2, 0xff})
	})
	return runtime.Function{Name: "lambda", HTTP: mux, Events: rc.handle}
}

func TestLambdaAPIGatewayV2(t *testing.T) {
	t.Parallel()
	h := runtime.LambdaHandler(lambdaFunction(&recorder{}), runtime.Deps{Logger: discard()})

	out, err := h(context.Background(), readSample(t, "apigw-v2-request-jwt-authorizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(*events.APIGatewayV2HTTPResponse)
	if resp.StatusCode != 200 || resp.IsBase64Encoded || len(resp.Cookies) != 1 || !strings.HasPrefix(resp.Cookies[0], "seen=1") {
		t.Fatalf("response %+v", resp)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["method"] != "GET" || raw["header1"] != "value1" || raw["body"] != "{\r\n\t\"a\": 1\r\n}" ||
		raw["host"] != "id.execute-api.us-east-1.amazonaws.com" || raw["cookies"] != float64(2) || raw["request_id"] != "id" {
		t.Fatalf("request as seen by the handler: %v", raw)
	}
	q, _ := raw["query"].(map[string]any)
	if p1, _ := q["parameter1"].([]any); len(p1) != 2 || p1[1] != "value2" {
		t.Fatalf("query: %v", q)
	}
	if resp.Headers["X-Request-Id"] != "id" || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("headers %v", resp.Headers)
	}

	// Base64 body and cookies, in the no-authorizer sample shape.
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(readSample(t, "apigw-v2-request-no-authorizer.json"), &req); err != nil {
		t.Fatal(err)
	}
	req.RawPath, req.RequestContext.HTTP.Method = "/my/path", "POST"
	req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte("\x00binary")), true
	req.Cookies = []string{"session=abc"}
	payload, _ := json.Marshal(req)
	out, err = h(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	resp = out.(*events.APIGatewayV2HTTPResponse)
	if err := json.Unmarshal([]byte(resp.Body), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["method"] != "POST" || raw["body"] != "\x00binary" || raw["session"] != "abc" || raw["host"] != "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com" {
		t.Fatalf("request as seen by the handler: %v", raw)
	}

	// Binary responses are base64-encoded; reserved endpoints and problems work the same.
	for path, want := range map[string]int{"/bin": 200, "/healthz": 200, "/readyz": 200, "/nope": 404} {
		req.RawPath, req.RequestContext.HTTP.Method, req.Body, req.IsBase64Encoded = path, "GET", "", false
		payload, _ := json.Marshal(req)
		out, err := h(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		resp := out.(*events.APIGatewayV2HTTPResponse)
		if resp.StatusCode != want {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if path == "/bin" && (!resp.IsBase64Encoded || resp.Body != base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff})) {
			t.Fatalf("binary body: %+v", resp)
		}
		if path == "/nope" && resp.Headers["Content-Type"] != "application/problem+json" {
			t.Fatalf("404 not a problem: %+v", resp)
		}
	}

	req.IsBase64Encoded, req.Body = true, "%%%"
	payload, _ = json.Marshal(req)
	if _, err := h(context.Background(), payload); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Fatalf("invalid base64 body: %v", err)
	}
}

// kafkaEvent returns the aws-lambda-go Kafka sample with its record replaced by records
// carrying binary-mode CloudEvents of the given types.
func kafkaEvent(t *testing.T, types ...string) json.RawMessage {
	t.Helper()
	var ke events.KafkaEvent
	if err := json.Unmarshal(readSample(t, "kafka-event.json"), &ke); err != nil {
		t.Fatal(err)
	}
	sample := ke.Records["AWSKafkaTopic-0"][0]
	var recs []events.KafkaRecord
	for i, typ := range types {
		rec := sample
		rec.Offset = int64(i)
		rec.Value = base64.StdEncoding.EncodeToString([]byte(`{"install_id":"i-1"}`))
		rec.Headers = []map[string]events.JSONNumberBytes{
			{"ce_specversion": []byte("1.0")}, {"ce_id": []byte("evt-" + typ)}, {"ce_source": []byte("/connect/install")},
			{"ce_type": []byte(typ)}, {"ce_time": []byte("2026-08-01T12:00:00Z")}, {"ce_partitionkey": []byte("int-7")},
			{"content-type": []byte("application/json")},
		}
		recs = append(recs, rec)
	}
	ke.Records = map[string][]events.KafkaRecord{"AWSKafkaTopic-0": recs}
	b, err := json.Marshal(ke)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLambdaKafka(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	h := runtime.LambdaHandler(lambdaFunction(rc), runtime.Deps{Logger: discard()})

	// The unmodified sample has no CloudEvent headers: logged and skipped, not retried.
	if _, err := h(context.Background(), readSample(t, "kafka-event.json")); err != nil {
		t.Fatalf("malformed record must be skipped: %v", err)
	}
	if len(rc.got) != 0 {
		t.Fatal("handler called for a non-CloudEvent record")
	}

	ok, perm, retry := "com.myscrollr.connect.install.completed", "com.myscrollr.connect.test.permanent", "com.myscrollr.connect.test.retry"
	if _, err := h(context.Background(), kafkaEvent(t, ok, perm, ok)); err != nil {
		t.Fatalf("ok and permanent records: %v", err)
	}
	if len(rc.got) != 3 {
		t.Fatalf("handler saw %d events, want 3", len(rc.got))
	}
	e := rc.got[0]
	if e.ID() != "evt-"+ok || e.Source() != "/connect/install" || e.Extensions()["partitionkey"] != "int-7" ||
		e.DataContentType() != "application/json" || string(e.Data()) != `{"install_id":"i-1"}` || e.Time().IsZero() {
		t.Fatalf("decoded event %s", e)
	}

	_, err := h(context.Background(), kafkaEvent(t, ok, retry, ok))
	if err == nil || !strings.Contains(err.Error(), "evt-"+retry) {
		t.Fatalf("retryable failure must fail the invocation naming the event: %v", err)
	}
	if len(rc.got) != 5 { // stops at the failing record
		t.Fatalf("handler saw %d events, want 5", len(rc.got))
	}

	// Structured mode on Kafka.
	var ke events.KafkaEvent
	_ = json.Unmarshal(kafkaEvent(t, ok), &ke)
	ev := sampleEvent(t, "com.myscrollr.connect.structured")
	body, _ := json.Marshal(ev)
	rec := &ke.Records["AWSKafkaTopic-0"][0]
	rec.Value = base64.StdEncoding.EncodeToString(body)
	rec.Headers = []map[string]events.JSONNumberBytes{{"content-type": []byte("application/cloudevents+json; charset=UTF-8")}}
	payload, _ := json.Marshal(ke)
	if _, err := h(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	if got := rc.last(); got.Type() != "com.myscrollr.connect.structured" || got.DataContentType() != cloudevents.ApplicationJSON {
		t.Fatalf("structured record decoded as %s", got)
	}
}

func TestLambdaRejectsUnknownShapes(t *testing.T) {
	t.Parallel()
	h := runtime.LambdaHandler(lambdaFunction(&recorder{}), runtime.Deps{Logger: discard()})
	for _, payload := range []string{`{"Records":[{"eventSource":"aws:sqs"}]}`, `[]`, `"x"`, `{"version":"1.0","httpMethod":"GET"}`} {
		if _, err := h(context.Background(), json.RawMessage(payload)); err == nil {
			t.Errorf("%s: want an error", payload)
		}
	}
}
