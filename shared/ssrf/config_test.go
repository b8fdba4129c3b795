package ssrf

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllow(t *testing.T) {
	got, err := ParseAllow(" 127.0.0.1/32, 10.1.2.3:8081,[::1]:9000, 127.0.0.2 ,")
	if err != nil {
		t.Fatal(err)
	}
	want := []Destination{
		{Prefix: netip.MustParsePrefix("127.0.0.1/32")},
		{Prefix: netip.MustParsePrefix("10.1.2.3/32"), Port: 8081},
		{Prefix: netip.MustParsePrefix("::1/128"), Port: 9000},
		{Prefix: netip.MustParsePrefix("127.0.0.2/32")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "localhost", "127.1", "::ffff:127.0.0.1/128", "fe80::1%lo", "1.2.3.4:0x50"} {
		if _, err := ParseAllow(bad); err == nil || !strings.Contains(err.Error(), EnvAllow) {
			t.Errorf("ParseAllow(%q) = %v, want an error naming %s", bad, err, EnvAllow)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{MaxRedirects: 6}, "MaxRedirects"},
		{Config{Ports: []uint16{443, 0}}, "Ports"},
		{Config{Timeout: -1}, "Timeout"},
		{Config{DialTimeout: -1}, "DialTimeout"},
		{Config{MaxBodyBytes: -1}, "MaxBodyBytes"},
		{Config{MaxHeaderBytes: -1}, "MaxHeaderBytes"},
		{Config{Allow: []Destination{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}}}, "Allow"},
		{Config{Allow: []Destination{{}}}, "Allow"},
	} {
		_, err := NewClient(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), "Config."+tc.field) {
			t.Errorf("%+v: %v, want an error naming Config.%s", tc.cfg, err, tc.field)
		}
	}
	if _, err := NewClient(Config{}); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

// TestAllowIsNarrow: an exact allowance (address and port) opens nothing else on that address,
// and the zero Config refuses plain http and other ports to public hosts.
func TestAllowIsNarrow(t *testing.T) {
	c := mustClient(t, Config{Allow: []Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: 8081}}}, hooks{})
	for u, want := range map[string]Reason{
		"http://127.0.0.1:8081/":  "",
		"https://127.0.0.1:8081/": "",
		"http://127.0.0.1:8082/":  ReasonLoopback,
		"http://127.0.0.2:8081/":  ReasonLoopback,
		"http://example.com/":     ReasonScheme,
		"https://example.com:81/": ReasonPort,
		"https://example.com/":    "",
	} {
		err := c.CheckURL(mustParse(t, u))
		var got Reason
		if r, ok := err.(*Refused); ok {
			got = r.Reason
		} else if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if got != want {
			t.Errorf("%s: %q, want %q", u, got, want)
		}
	}
}
