package knative

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"PT0.2S":      200 * time.Millisecond,
		"PT0,5S":      500 * time.Millisecond,
		"PT1S":        time.Second,
		"PT1M30S":     90 * time.Second,
		"PT2H":        2 * time.Hour,
		"P1D":         24 * time.Hour,
		"P1DT2H":      26 * time.Hour,
		"P2W":         14 * 24 * time.Hour,
		"PT0.01S":     10 * time.Millisecond,
		"PT1.5M":      90 * time.Second,
		"PT0S":        0,
		"P1DT1H1M1S":  25*time.Hour + time.Minute + time.Second,
		"PT0.000001S": time.Microsecond,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                                "must start with P",
		"200ms":                           "must start with P",
		"P":                               "no components",
		"PT":                              "no components",
		"P1Y":                             "years and months",
		"P1M":                             "years and months",
		"P1H":                             "unexpected unit",
		"PT1D":                            "unexpected unit",
		"PT1":                             "has no unit",
		"PT.5S":                           "malformed number",
		"PT5.S":                           "malformed number",
		"PT1.2.3S":                        "malformed number",
		"PTS":                             "expected a number",
		"PT1S1S":                          "appears twice",
		"P1DT1HT1M":                       "T appears twice",
		"-PT1S":                           "must start with P",
		"P99999999999W":                   "out of range",
		"PT1S" + strings.Repeat("0", 100): "longer than",
	}
	for in, want := range bad {
		_, err := ParseDuration(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDuration(%q) error = %v, want it to contain %q", in, err, want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"PT0.2S", "P1DT2H", "P2W", "PT1,5M", "P1Y", "PT", "P9999999999999W", "PT1e9S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
	})
}
