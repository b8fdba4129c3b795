package catalogload_test

import (
	"context"
	"testing"
	"time"

	"github.com/myscrollr/connect/tests/catalogload"
)

// TestSmoke runs the whole tool on a small data set: it builds the catalog and starts
// PostgreSQL, so -short skips it. It checks that the catalog answers every paced request, that
// the direct SQL returns what the catalog returns (Run fails otherwise), and that overload is
// shed with Retry-After rather than failing. Timings are reported, not asserted.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the catalog and starts PostgreSQL")
	}
	rep, err := catalogload.Run(context.Background(), catalogload.Options{
		Listings: 3000, Reviews: 30000, Rate: 100, Duration: time.Second, Concurrency: 4,
		OverloadRate: 3000, OverloadDuration: time.Second, MaxConns: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 2 {
		t.Fatalf("%d scenarios", len(rep.Scenarios))
	}
	for _, sc := range rep.Scenarios {
		if sc.Items == 0 {
			t.Errorf("%s: the catalog answered no items", sc.Name)
		}
		for _, r := range sc.Runs {
			if r.Errors != 0 || r.OK == 0 {
				t.Errorf("%s %s %s: %d ok, %d errors", sc.Name, r.Target, r.Mode, r.OK, r.Errors)
			}
		}
		t.Logf("%s: catalog/sql max rate %.2f", sc.Name, sc.Ratio)
	}
	if o := rep.Overload; o == nil || o.Errors != 0 || o.OK+o.Shed != o.Requests {
		t.Errorf("overload = %+v: want every request served or shed with Retry-After", o)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []catalogload.Options{{Listings: 10}, {Rate: -1}, {Concurrency: 5000}, {MaxConns: 500}, {Duration: -time.Second}} {
		if _, err := catalogload.Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
