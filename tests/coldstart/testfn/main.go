// Command testfn is the smallest function on the runtime (one HTTP route, no database, no
// event handler: a function with one needs a sender configuration, whose discovery would put
// the identity server in the measurement), for testing the cold-start tool and measuring the
// runtime's own cost.
package main

import (
	"context"
	"net/http"

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
		return runtime.Function{Name: "testfn", HTTP: mux}, nil
	})
}
