// Command hello is the cold-start baseline: the smallest net/http server, answering 200 on /.
// It reads PORT (default 8080) and LISTEN_HOST like the function runtime does.
package main

import (
	"net"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello\n")) })
	if err := http.ListenAndServe(net.JoinHostPort(os.Getenv("LISTEN_HOST"), port), nil); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
