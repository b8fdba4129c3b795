package fanout_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/myscrollr/connect/shared/fanout"
)

func hostOf(s string) string { h, _, _ := strings.Cut(s, "/"); return h }

// Every item is called once, and the limits hold at every moment.
func TestRunLimits(t *testing.T) {
	var items []string
	for i := range 300 {
		items = append(items, []string{"a", "b", "c", "d", "e"}[i%5]+"/"+string(rune('0'+i%10)))
	}
	var mu sync.Mutex
	running, maxRunning := 0, 0
	perKey, maxPerKey := map[string]int{}, 0
	calls := 0
	fanout.Run(context.Background(), items, hostOf, fanout.Limits{Concurrency: 7, PerKey: 2}, func(ctx context.Context, it string) {
		mu.Lock()
		calls++
		running++
		perKey[hostOf(it)]++
		maxRunning = max(maxRunning, running)
		maxPerKey = max(maxPerKey, perKey[hostOf(it)])
		mu.Unlock()
		mu.Lock()
		running--
		perKey[hostOf(it)]--
		mu.Unlock()
	})
	if calls != len(items) || maxRunning > 7 || maxPerKey > 2 {
		t.Fatalf("calls %d of %d, max running %d (limit 7), max per key %d (limit 2)", calls, len(items), maxRunning, maxPerKey)
	}
}

// A key at its cap does not hold up the other keys, and the global limit is reached.
func TestRunNoHeadOfLineBlocking(t *testing.T) {
	items := []string{"slow/1", "slow/2", "slow/3", "fast/1", "fast/2", "other/1"}
	release := make(chan struct{})
	started := make(chan string, len(items))
	done := make(chan struct{})
	go func() {
		fanout.Run(context.Background(), items, hostOf, fanout.Limits{Concurrency: 3, PerKey: 1}, func(ctx context.Context, it string) {
			started <- it
			if hostOf(it) == "slow" {
				<-release
			}
		})
		close(done)
	}()
	// slow/1 blocks; slow/2 and slow/3 wait for it, while every other item runs.
	var got []string
	for range 4 {
		got = append(got, <-started)
	}
	slices.Sort(got)
	if want := []string{"fast/1", "fast/2", "other/1", "slow/1"}; !slices.Equal(got, want) {
		t.Fatalf("started while slow/1 blocks: %v, want %v", got, want)
	}
	select {
	case it := <-started:
		t.Fatalf("%s started while slow/1 held its key's only slot", it)
	default:
	}
	close(release)
	<-done
	if a, b := <-started, <-started; a != "slow/2" || b != "slow/3" {
		t.Fatalf("then %s, %s; want slow/2, slow/3 in order", a, b)
	}
}

// Keys take turns: a key with many items does not go first with all of them.
func TestRunRoundRobin(t *testing.T) {
	items := []string{"a/1", "a/2", "a/3", "a/4", "b/1", "b/2", "c/1"}
	var order []string
	fanout.Run(context.Background(), items, hostOf, fanout.Limits{Concurrency: 1}, func(ctx context.Context, it string) {
		order = append(order, it) // Concurrency 1: calls never overlap
	})
	if want := []string{"a/1", "b/1", "c/1", "a/2", "b/2", "a/3", "a/4"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

// When the context ends, nothing more starts, running calls see it, and the skipped are counted.
func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	items := make([]int, 10)
	for i := range items {
		items[i] = i
	}
	var mu sync.Mutex
	calls, sawDone := 0, 0
	skipped := fanout.Run(ctx, items, func(int) string { return "k" }, fanout.Limits{Concurrency: 2}, func(ctx context.Context, i int) {
		mu.Lock()
		calls++
		if calls == 2 {
			cancel()
		}
		mu.Unlock()
		<-ctx.Done()
		mu.Lock()
		sawDone++
		mu.Unlock()
	})
	if calls != 2 || sawDone != 2 || skipped != 8 {
		t.Fatalf("calls %d, saw done %d, skipped %d; want 2, 2, 8", calls, sawDone, skipped)
	}
}

func TestRunEmptyAndZeroLimits(t *testing.T) {
	if n := fanout.Run(context.Background(), nil, hostOf, fanout.Limits{}, func(context.Context, string) { t.Fatal("called") }); n != 0 {
		t.Fatalf("skipped %d", n)
	}
	n := 0
	fanout.Run(context.Background(), []string{"a/1", "b/1"}, hostOf, fanout.Limits{}, func(context.Context, string) { n++ })
	if n != 2 {
		t.Fatalf("zero limits: %d calls, want 2 (one at a time)", n)
	}
}

func BenchmarkRun10k(b *testing.B) {
	items := make([]int, 10_000)
	for i := range items {
		items[i] = i
	}
	key := func(i int) string { return string(rune('a' + i%2000)) }
	for b.Loop() {
		fanout.Run(context.Background(), items, key, fanout.Limits{Concurrency: 2048, PerKey: 4}, func(context.Context, int) {})
	}
}
