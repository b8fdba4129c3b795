// Package runtime serves a MyScrollr Connect function the way Knative Serving and Eventing
// expect, and the same function on AWS Lambda.
//
// A function's main is one call: runtime.Main(name, setup). Main reads LOG_LEVEL, PORT,
// DRAIN_TIMEOUT, SHUTDOWN_TIMEOUT and MAX_EVENT_BYTES, builds the JSON logger and a Prometheus
// registry, calls setup, then serves until SIGTERM/SIGINT. Serve does the serving and is what
// tests and the local runtime call.
//
// # Endpoints
//
//   - GET /healthz: liveness, always 200 while the process serves.
//   - GET /readyz: readiness; 503 as soon as draining starts or when Function.Ready fails.
//   - GET /metrics: Prometheus text format from the function's own registry (never the global
//     one): connect_http_requests_total{function,route,method,code},
//     connect_http_request_duration_seconds{function,route,method},
//     connect_events_total{function,type,outcome} (outcome ok|retry|permanent|malformed),
//     plus the Go and process collectors.
//   - POST /events (when Function.Events is set): CloudEvents in binary or structured content
//     mode, bodies bounded (MAX_EVENT_BYTES, default 1 MiB, 413 beyond). Replies follow the
//     Knative Eventing data-plane contract: 200 when the handler returns nil; 400
//     problem+json for an events.Permanent error or a malformed event (not retried, dead-lettered);
//     500 for any other error or a panic (retried).
//   - Everything else goes to Function.HTTP; unknown paths are 404 problem+json and wrong
//     methods 405 problem+json (also for an *http.ServeMux's own not-found and
//     method-not-allowed replies, which are rewritten as problems).
//
// Every request gets a request id (X-Request-Id, taken from the request when it is a sane
// token, else generated, and echoed in the response), a logger in its context (package
// logging) with request_id, method and path, an access log line, metrics, and panic recovery.
//
// # Draining
//
// When the serve context ends (SIGTERM in Main), readiness fails at once; requests keep being
// served until no request is in flight and a quiet period (DRAIN_TIMEOUT, default 30s) has
// passed since the last non-probe request arrived or finished; then the server shuts down
// (in-flight stragglers bounded by SHUTDOWN_TIMEOUT) and Function.Close runs. These are the
// semantics of knative.dev/pkg's network/handlers.Drainer (quiet period restarted by each
// request), plus "not while a request is in flight", reimplemented here (drain.go) because that
// package imports knative.dev/pkg/network, which would add 24 non-standard packages (klog,
// logr, k8s.io/apimachinery/pkg/util, k8s.io/utils/clock, golang.org/x/net/http2 and h2c) to
// the runtime's 80 in every function binary, and its Drainer
// only fails probes that carry a kubelet User-Agent, whereas /readyz must fail for every caller
// (the local runtime and the cold-start bench are not kubelets). Signal handling uses
// knative.dev/pkg/signals (a leaf package: os/signal only; a second signal exits at once).
//
// # Lambda
//
// When AWS_LAMBDA_RUNTIME_API is set, Main serves through aws-lambda-go instead; LambdaHandler
// is the adapter: API Gateway v2 HTTP events run through the same http.Handler stack, and MSK /
// self-managed Kafka events whose records carry CloudEvents (binary mode `ce_` headers, or
// structured mode, decoded by events/kafkace) go to Function.Events. The reply is a partial
// batch response (KafkaBatchResponse; the event source mapping must list
// ReportBatchItemFailures): the first retryable failure of each partition is reported and
// retried by Lambda from there (consumers are idempotent); permanent failures and malformed
// records can never succeed, so they are logged, counted and dropped.
//
// Knative images are built with -tags nolambda (skaffold, make build): the Lambda adapter and
// what only it needs (aws-lambda-go, its net/rpc mode, the Kafka binding and franz-go) stay out
// of the binary, which starts faster and is smaller (tests/coldstart measures it); such a binary
// refuses to start on Lambda with a reason. Builds for Lambda leave the tag out.
package runtime
