package runtime_test

import (
	"log/slog"
	"net"
	"testing"
)

func newLoopbackListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
