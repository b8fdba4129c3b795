//go:build !nolambda

package runtime_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

// kafkaRecords returns records shaped like the aws-lambda-go Kafka sample's, on the sample's
// topic and the given partition, carrying binary-mode CloudEvents of the given types; the type
// "malformed" makes a record that is no CloudEvent (no ce_specversion).
func kafkaRecords(t *testing.T, partition int64, types ...string) []events.KafkaRecord {
	t.Helper()
	var ke events.KafkaEvent
	if err := json.Unmarshal(readSample(t, "kafka-event.json"), &ke); err != nil {
		t.Fatal(err)
	}
	sample := ke.Records["AWSKafkaTopic-0"][0]
	var recs []events.KafkaRecord
	for i, typ := range types {
		rec := sample
		rec.Partition, rec.Offset = partition, int64(i)
		rec.Value = base64.StdEncoding.EncodeToString([]byte(`{"install_id":"i-1"}`))
		rec.Headers = []map[string]events.JSONNumberBytes{
			{"ce_specversion": []byte("1.0")}, {"ce_id": []byte(fmt.Sprintf("evt-%d-%d-%s", partition, i, typ))}, {"ce_source": []byte("/connect/install")},
			{"ce_type": []byte(typ)}, {"ce_time": []byte("2026-08-01T12:00:00Z")}, {"ce_partitionkey": []byte("int-7")},
			{"content-type": []byte("application/json")},
		}
		if typ == "malformed" {
			rec.Headers = rec.Headers[1:]
		}
		recs = append(recs, rec)
	}
	return recs
}

// kafkaEvent returns the aws-lambda-go Kafka sample with its records replaced by partitions of
// kafkaRecords: partitions[i] are the types on partition i.
func kafkaEvent(t *testing.T, partitions ...[]string) json.RawMessage {
	t.Helper()
	var ke events.KafkaEvent
	if err := json.Unmarshal(readSample(t, "kafka-event.json"), &ke); err != nil {
		t.Fatal(err)
	}
	ke.Records = map[string][]events.KafkaRecord{}
	for p, types := range partitions {
		ke.Records[fmt.Sprintf("AWSKafkaTopic-%d", p)] = kafkaRecords(t, int64(p), types...)
	}
	b, err := json.Marshal(ke)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invokeKafka runs h on payload and returns the batch response as Lambda reads it (JSON).
func invokeKafka(t *testing.T, h func(context.Context, json.RawMessage) (any, error), payload json.RawMessage) string {
	t.Helper()
	out, err := h(context.Background(), payload)
	if err != nil {
		t.Fatalf("a Kafka batch must not fail as a whole: %v", err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (rc *recorder) ids() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ids []string
	for _, e := range rc.got {
		ids = append(ids, e.ID())
	}
	return ids
}

const noFailures = `{"batchItemFailures":[]}`

func TestLambdaKafka(t *testing.T) {
	t.Parallel()
	ok, perm, retry := "com.myscrollr.connect.install.completed", "com.myscrollr.connect.test.permanent", "com.myscrollr.connect.test.retry"

	t.Run("sample record is no CloudEvent: dropped, not retried", func(t *testing.T) {
		t.Parallel()
		rc := &recorder{}
		h := runtime.LambdaHandler(lambdaFunction(rc), runtime.Deps{Logger: discard()})
		if got := invokeKafka(t, h, readSample(t, "kafka-event.json")); got != noFailures {
			t.Fatalf("response %s, want %s", got, noFailures)
		}
		if len(rc.got) != 0 {
			t.Fatal("handler called for a non-CloudEvent record")
		}
	})

	t.Run("one bad record among good ones", func(t *testing.T) {
		t.Parallel()
		rc := &recorder{}
		h := runtime.LambdaHandler(lambdaFunction(rc), runtime.Deps{Logger: discard()})
		got := invokeKafka(t, h, kafkaEvent(t, []string{ok, "malformed", perm, ok}))
		if got != noFailures {
			t.Fatalf("response %s: malformed and permanent records can never succeed and must not be retried", got)
		}
		if ids := fmt.Sprint(rc.ids()); ids != "[evt-0-0-"+ok+" evt-0-2-"+perm+" evt-0-3-"+ok+"]" {
			t.Fatalf("handler saw %s", ids)
		}
		e := rc.got[0]
		if e.Source() != "/connect/install" || e.Extensions()["partitionkey"] != "int-7" || e.DataContentType() != "application/json" ||
			string(e.Data()) != `{"install_id":"i-1"}` || e.Time().IsZero() {
			t.Fatalf("decoded event %s", e)
		}
	})

	t.Run("retryable failure is reported, its partition stops, others go on", func(t *testing.T) {
		t.Parallel()
		rc := &recorder{}
		h := runtime.LambdaHandler(lambdaFunction(rc), runtime.Deps{Logger: discard()})
		got := invokeKafka(t, h, kafkaEvent(t, []string{ok, retry, ok}, []string{ok, ok}))
		want := `{"batchItemFailures":[{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":1}}]}`
		if got != want {
			t.Fatalf("response %s, want %s", got, want)
		}
		ids := fmt.Sprint(rc.ids())
		if ids != "[evt-0-0-"+ok+" evt-0-1-"+retry+" evt-1-0-"+ok+" evt-1-1-"+ok+"]" {
			t.Fatalf("handler saw %s: the record after the failure must wait for the retry", ids)
		}
	})

	t.Run("strict decoding through kafkace", func(t *testing.T) {
		t.Parallel()
		rc := &recorder{}
		h := runtime.LambdaHandler(lambdaFunction(rc), runtime.Deps{Logger: discard(), MaxEventBytes: 64})
		var ke events.KafkaEvent
		if err := json.Unmarshal(kafkaEvent(t, []string{ok, ok, ok, ok, ok}), &ke); err != nil {
			t.Fatal(err)
		}
		recs := ke.Records["AWSKafkaTopic-0"]
		recs[0].Value = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 65))) // over MaxEventBytes
		recs[1].Value = "%%%"                                                              // not base64
		recs[2].Headers = append(recs[2].Headers, map[string]events.JSONNumberBytes{"ce_id": []byte("again")})
		recs[3].Headers[4] = map[string]events.JSONNumberBytes{"ce_time": []byte("yesterday")}
		payload, err := json.Marshal(ke)
		if err != nil {
			t.Fatal(err)
		}
		if got := invokeKafka(t, h, payload); got != noFailures {
			t.Fatalf("response %s", got)
		}
		if ids := fmt.Sprint(rc.ids()); ids != "[evt-0-4-"+ok+"]" {
			t.Fatalf("handler saw %s, want only the valid record", ids)
		}
	})

	t.Run("structured mode", func(t *testing.T) {
		t.Parallel()
		rc := &recorder{}
		h := runtime.LambdaHandler(lambdaFunction(rc), runtime.Deps{Logger: discard()})
		var ke events.KafkaEvent
		if err := json.Unmarshal(kafkaEvent(t, []string{ok}), &ke); err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(sampleEvent(t, "com.myscrollr.connect.structured"))
		if err != nil {
			t.Fatal(err)
		}
		rec := &ke.Records["AWSKafkaTopic-0"][0]
		rec.Value = base64.StdEncoding.EncodeToString(body)
		rec.Headers = []map[string]events.JSONNumberBytes{{"content-type": []byte("application/cloudevents+json; charset=UTF-8")}}
		payload, err := json.Marshal(ke)
		if err != nil {
			t.Fatal(err)
		}
		if got := invokeKafka(t, h, payload); got != noFailures {
			t.Fatalf("response %s", got)
		}
		if got := rc.last(); got.Type() != "com.myscrollr.connect.structured" || got.DataContentType() != cloudevents.ApplicationJSON {
			t.Fatalf("structured record decoded as %s", got)
		}
	})
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
