// Command testfn is the smallest function on the runtime (an HTTP route and an event handler,
// no database), for testing the cold-start tool and measuring the runtime's own cost.
package main

import (
	"context"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("testfn", func(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
		mux := http.NewServeMux()
		mux.Handle("GET /v1/hello", httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"hello": "world"})
			return nil
		}))
		return runtime.Function{
			Name:   "testfn",
			HTTP:   mux,
			Events: func(ctx context.Context, e cloudevents.Event) error { return nil },
		}, nil
	})
}
