package runtime

import "time"

// Slow clients are cut off: Serve's server bounds the time to read a request's header, the
// time to read the whole request (header and body), and how long a kept-alive connection may
// sit idle. The values fit a Knative Service with timeoutSeconds: 30 (infra/knative):
//
//   - ReadHeaderTimeout (DefaultReadHeaderTimeout, 10s): a client that trickles its header
//     holds a connection at most this long.
//   - ReadTimeout (DefaultReadTimeout, 15s): header and body, counted from the start of the
//     request. Bodies are small (events at most MAX_EVENT_BYTES, 1 MiB by default; JSON
//     requests less), so 15s is ample for an honest client, and a request whose body took that
//     long still has half of Knative's 30s for its work. Go clears the read deadline once the
//     body has been read to its end, so a handler may run longer than this; only reading the
//     body is bounded. A handler that streamed a large body while working on it would need
//     its own limit (none does).
//   - IdleTimeout (DefaultIdleTimeout, 90s): between requests on a kept-alive connection; as
//     long as Go's default transport keeps an idle connection, so the proxy in front (Knative's
//     queue-proxy, the local front door) is normally the side that closes it, not the server
//     under a request it is about to send.
//
// There is deliberately no WriteTimeout: in net/http it runs from the end of the request
// header to the end of the response, so it bounds the handler's own time as well, and when it
// fires the client gets a reset connection instead of a status. Handlers may legitimately take
// up to the platform's request timeout (an event whose Logto call is slow); Knative's
// queue-proxy enforces timeoutSeconds and answers 504 itself, and handlers bound their work
// with the request context. Responses are small JSON documents that mostly fit in the socket
// buffer, so a client that reads them slowly rarely holds a handler.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultIdleTimeout       = 90 * time.Second
)

// orDefault is d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
