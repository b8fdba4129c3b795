package ssrf

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// blockedV4 lists IPv4 addresses that must be refused, with the reason: the first and last
// address of every refused range and the well-known addresses inside them.
var blockedV4 = []struct {
	addr   string
	reason Reason
}{
	{"0.0.0.0", ReasonUnspecified},
	{"0.1.2.3", ReasonReserved}, {"0.255.255.255", ReasonReserved},
	{"10.0.0.0", ReasonPrivate}, {"10.0.0.1", ReasonPrivate}, {"10.255.255.255", ReasonPrivate},
	{"100.64.0.0", ReasonCGNAT}, {"100.127.255.255", ReasonCGNAT},
	{"100.100.100.200", ReasonMetadata},
	{"127.0.0.0", ReasonLoopback}, {"127.0.0.1", ReasonLoopback}, {"127.255.255.255", ReasonLoopback},
	{"169.254.0.0", ReasonLinkLocal}, {"169.254.255.255", ReasonLinkLocal},
	{"169.254.169.254", ReasonMetadata}, {"169.254.170.2", ReasonMetadata},
	{"172.16.0.0", ReasonPrivate}, {"172.31.255.255", ReasonPrivate},
	{"192.0.0.0", ReasonReserved}, {"192.0.0.255", ReasonReserved}, {"192.0.0.192", ReasonMetadata},
	{"192.0.2.0", ReasonDocumentation}, {"192.0.2.255", ReasonDocumentation},
	{"192.88.99.0", ReasonReserved}, {"192.88.99.255", ReasonReserved},
	{"192.168.0.0", ReasonPrivate}, {"192.168.255.255", ReasonPrivate},
	{"198.18.0.0", ReasonBenchmarking}, {"198.19.255.255", ReasonBenchmarking},
	{"198.51.100.0", ReasonDocumentation}, {"198.51.100.255", ReasonDocumentation},
	{"203.0.113.0", ReasonDocumentation}, {"203.0.113.255", ReasonDocumentation},
	{"224.0.0.0", ReasonMulticast}, {"239.255.255.255", ReasonMulticast},
	{"240.0.0.0", ReasonReserved}, {"255.255.255.254", ReasonReserved},
	{"255.255.255.255", ReasonBroadcast},
}

// blockedV6 lists IPv6 addresses that must be refused (native IPv6 ranges and embeddings
// whose IPv4 part the forms below do not generate).
var blockedV6 = []struct {
	addr   string
	reason Reason
}{
	{"::", ReasonUnspecified}, {"::1", ReasonLoopback},
	{"fd00:ec2::254", ReasonMetadata},
	{"fc00::", ReasonPrivate}, {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonPrivate},
	{"fe80::", ReasonLinkLocal}, {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonLinkLocal},
	{"fec0::1", ReasonPrivate},
	{"ff00::", ReasonMulticast}, {"ff02::1", ReasonMulticast}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonMulticast},
	{"2001:db8::", ReasonDocumentation}, {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", ReasonDocumentation},
	{"3fff::", ReasonDocumentation}, {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonDocumentation},
	{"2001:2::", ReasonBenchmarking}, {"2001:2:0:ffff:ffff:ffff:ffff:ffff", ReasonBenchmarking},
	{"2001:1::1", ReasonReserved}, {"2001:10::1", ReasonReserved}, {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonReserved},
	{"100::1", ReasonReserved},             // discard-only (RFC 6666)
	{"::ffff:0:7f00:1", ReasonReserved},    // SIIT IPv4-translated
	{"64:ff9b:1::808:808", ReasonReserved}, // local-use NAT64, even with a public IPv4 inside
	{"64:ff9b:1::a00:1", ReasonPrivate},
	{"4000::1", ReasonReserved}, {"5f00::1", ReasonReserved}, {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonReserved},
	{"0:0:0:0:0:ffff:7f00:1", ReasonLoopback}, // mapped, spelled out
}

// publicV4 is a public IPv4 address used as the Teredo server and in the public cases.
const publicV4 = "65.54.227.120"

// v4forms spells a blocked IPv4 address in every IPv6 form that embeds it.
func v4forms(a netip.Addr) map[string]netip.Addr {
	b := a.As4()
	srv := netip.MustParseAddr(publicV4).As4()
	teredo := [16]byte{0x20, 0x01, 0, 0, srv[0], srv[1], srv[2], srv[3], 0, 0, 0xff, 0xff, ^b[0], ^b[1], ^b[2], ^b[3]}
	teredoSrv := [16]byte{0x20, 0x01, 0, 0, b[0], b[1], b[2], b[3], 0, 0, 0xff, 0xff, ^srv[0], ^srv[1], ^srv[2], ^srv[3]}
	sixToFour := [16]byte{0x20, 0x02, b[0], b[1], b[2], b[3], 15: 1}
	return map[string]netip.Addr{
		"mapped":        netip.AddrFrom16(a.As16()),
		"compatible":    netip.AddrFrom16([16]byte{12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
		"nat64":         netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
		"6to4":          netip.AddrFrom16(sixToFour),
		"teredo-client": netip.AddrFrom16(teredo),
		"teredo-server": netip.AddrFrom16(teredoSrv),
	}
}

type corpusCase struct {
	name   string
	url    string
	reason Reason // "" accepts any refusal reason
}

// corpus builds the refused cases. canary is a canary port; every address case targets it,
// with the client configured to allow that port and plain http, so only the address check
// stands between the request and the canary. Host names are registered on rec.
func corpus(rec *recorder, canary uint16, srv *allowedServer) []corpusCase {
	var cs []corpusCase
	add := func(name, u string, r Reason) { cs = append(cs, corpusCase{name, u, r}) }
	hostURL := func(a netip.Addr) string {
		if a.Is4() {
			return fmt.Sprintf("http://%s:%d/", a, canary)
		}
		return fmt.Sprintf("http://[%s]:%d/", a, canary)
	}
	n := 0
	byName := func(label string, a netip.Addr, r Reason) {
		n++
		host := fmt.Sprintf("h%d.corpus.test", n)
		rec.add(host, a.String())
		add("name "+label, fmt.Sprintf("http://%s:%d/", host, canary), r)
	}
	for _, b := range blockedV4 {
		a := netip.MustParseAddr(b.addr)
		add("literal "+b.addr, hostURL(a), b.reason)
		byName(b.addr, a, b.reason)
		for form, v6 := range v4forms(a) {
			add(form+" "+b.addr, hostURL(v6), b.reason)
			if form == "nat64" || form == "teredo-client" {
				byName(form+" "+b.addr, v6, b.reason)
			}
		}
	}
	for _, b := range blockedV6 {
		a := netip.MustParseAddr(b.addr)
		add("literal "+b.addr, hostURL(a), b.reason)
		byName(b.addr, a, b.reason)
	}
	// Numeric shorthands some resolvers read as 127.0.0.1 or 0.0.0.0, and other strict-host cases.
	for _, h := range []string{
		"127.1", "127.0.1", "0x7f000001", "0X7F000001", "2130706433", "017700000001", "0177.0.0.1",
		"0177.0.0.01", "0x7f.0.0.1", "0x7f.1", "127.0.0.1.", "127.000.000.001", "0", "0x0", "00",
		"0.0", "1.2.3.4.5", "4294967295", "0xffffffff", "127.0.0.0x1", "%31%32%37.0.0.1",
		"127.0.0.1%00.example.com", "exa mple.com", "ex$ample.com", "ex..ample.com", "-example.com",
		"example-.com", "bücher.example", strings.Repeat("a", 64) + ".com",
		strings.Repeat("a.", 127) + "com",
	} {
		add("host "+h, fmt.Sprintf("http://%s:%d/", h, canary), "")
	}
	for _, h := range []string{"localhost", "LOCALHOST", "localhost.", "api.localhost", "a.b.LocalHost"} {
		add("name "+h, fmt.Sprintf("http://%s:%d/", h, canary), ReasonLoopback)
	}
	for _, h := range []string{"[fe80::1%25lo]", "[::1%25lo]", "[2606:4700::1111%25eth0]"} {
		add("zone "+h, fmt.Sprintf("http://%s:%d/", h, canary), "")
	}
	// Schemes, userinfo, ports.
	for _, u := range []string{
		"file:///etc/passwd", "file://localhost/etc/passwd", fmt.Sprintf("gopher://127.0.0.1:%d/_HELO", canary),
		"ftp://example.com/", "data:text/plain,hello", "dict://127.0.0.1:11211/", "ldap://127.0.0.1/",
		"jar:http://example.com!/", "javascript:alert(1)", "ws://example.com/", "wss://example.com/",
		"netdoc:///etc/passwd", "sftp://example.com/", "tftp://example.com/", "//example.com/", "example.com",
		fmt.Sprintf("gopher://h1.corpus.test:%d/", canary),
	} {
		add("scheme "+u, u, ReasonScheme)
	}
	add("opaque", "http:example.com", ReasonHost)
	for _, u := range []string{
		"https://user:pw@example.com/", "https://user@example.com/", "https://example.com@127.0.0.1/",
		fmt.Sprintf("http://a:b@%s/", srv.ap), "https://:@example.com/",
	} {
		add("userinfo "+u, u, ReasonUserinfo)
	}
	for _, u := range []string{
		"https://example.com:22/", "http://example.com:22/", "https://example.com:8443/", "https://example.com:0/",
		"https://example.com:0443/", "https://example.com:65536/", "https://example.com:99999999/",
		"https://8.8.8.8:22/", "https://[2606:4700::1111]:25/",
	} {
		add("port "+u, u, ReasonPort)
	}
	add("port 22 loopback", "http://127.0.0.1:22/", ReasonLoopback)
	add("empty host", "https:///path", ReasonHost)
	add("empty host with port", "https://:443/", ReasonHost)
	return cs
}

func TestCorpusReachesNoCanary(t *testing.T) {
	can := startCanaries(t, 3)
	srv := startAllowed(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rec := newRecorder()
	cfg := Config{AllowHTTP: true, Ports: can.allPorts(), Allow: []Destination{srv.dest()}}
	c := mustClient(t, cfg, rec.hooks())

	total := 0
	for _, port := range can.allPorts() {
		cases := corpus(rec, port, srv)
		total += len(cases)
		var wg sync.WaitGroup
		for _, tc := range cases {
			wg.Go(func() {
				_, err := get(c, tc.url)
				var r *Refused
				if !errors.As(err, &r) {
					t.Errorf("%s: %s: got %v, want *Refused", tc.name, tc.url, err)
					return
				}
				if tc.reason != "" && r.Reason != tc.reason {
					t.Errorf("%s: %s: reason %q, want %q (%v)", tc.name, tc.url, r.Reason, tc.reason, err)
				}
			})
		}
		wg.Wait()
	}
	t.Logf("corpus: %d refused cases over %d canary ports", total, len(can.allPorts()))
	if total < 200*len(can.allPorts()) {
		t.Errorf("corpus has %d cases per port, want at least 200", total/len(can.allPorts()))
	}
	if n := can.accepts.Load(); n != 0 {
		t.Errorf("canaries accepted %d connections, want 0", n)
	}
	if a := rec.attempts(); len(a) != 0 {
		t.Errorf("non-loopback connections attempted: %v", a)
	}

	// Public by configuration: the allowed server is reached, over http on its own port.
	if code, err := get(c, srv.url("/ok")); err != nil || code != http.StatusOK {
		t.Fatalf("allowed server: %d, %v", code, err)
	}
	if srv.hits.Load() != 1 {
		t.Errorf("allowed server hits = %d, want 1", srv.hits.Load())
	}
}

// TestPublicAddressesAreDialed shows the checks do not refuse public addresses: each is
// dialed (the test hook stops before connect and records the address).
func TestPublicAddressesAreDialed(t *testing.T) {
	rec := newRecorder()
	rec.add("public.test", "93.184.215.14")
	rec.add("public6.test", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
	rec.add("nat64.test", "64:ff9b::5db8:d70e")
	c := mustClient(t, Config{}, rec.hooks())
	cases := map[string]string{
		"https://public.test/":                            "93.184.215.14:443",
		"https://public6.test/":                           "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443",
		"https://nat64.test/":                             "[64:ff9b::5db8:d70e]:443",
		"https://8.8.8.8/":                                "8.8.8.8:443",
		"https://[2606:4700::1111]/":                      "[2606:4700::1111]:443",
		"https://[64:ff9b::808:808]/":                     "[64:ff9b::808:808]:443",
		"https://[2002:808:808::1]/":                      "[2002:808:808::1]:443",
		"https://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/": "[2001:0:4136:e378:8000:63bf:f7f7:f7f7]:443",
		"https://[::ffff:8.8.4.4]/":                       "8.8.4.4:443",
		"https://100.63.255.255/":                         "100.63.255.255:443",
		"https://100.128.0.0/":                            "100.128.0.0:443",
		"https://172.15.255.255/":                         "172.15.255.255:443",
		"https://172.32.0.0/":                             "172.32.0.0:443",
		"https://11.0.0.0/":                               "11.0.0.0:443",
		"https://223.255.255.255/":                        "223.255.255.255:443",
	}
	for u, want := range cases {
		_, err := get(c, u)
		if !errors.Is(err, errNoConnect) {
			t.Errorf("%s: got %v, want the test hook's errNoConnect", u, err)
			continue
		}
		a := rec.attempts()
		if got := a[len(a)-1].String(); got != want {
			t.Errorf("%s: dialed %s, want %s", u, got, want)
		}
	}
}

// TestRebinding uses a resolver that alternates a public and a loopback answer: the check is
// made on each dialed socket, so the loopback answer never connects.
func TestRebinding(t *testing.T) {
	can := startCanaries(t, 1)
	port := can.ports[0]
	rec := newRecorder()
	var mu sync.Mutex
	flip := false
	rec.resolver = func(host string) []netip.Addr {
		mu.Lock()
		defer mu.Unlock()
		flip = !flip
		if flip {
			return []netip.Addr{netip.MustParseAddr("93.184.215.14")}
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	c := mustClient(t, Config{AllowHTTP: true, Ports: []uint16{port}}, rec.hooks())
	u := fmt.Sprintf("http://rebind.test:%d/", port)
	for i := range 6 {
		_, err := get(c, u)
		var r *Refused
		if i%2 == 0 {
			if !errors.Is(err, errNoConnect) {
				t.Errorf("request %d (public answer): %v, want errNoConnect", i, err)
			}
		} else if !errors.As(err, &r) || r.Reason != ReasonLoopback || r.Addr.String() != fmt.Sprintf("127.0.0.1:%d", port) {
			t.Errorf("request %d (loopback answer): %v, want refused loopback at 127.0.0.1:%d", i, err, port)
		}
	}
	if rec.lookups != 6 {
		t.Errorf("lookups = %d, want 6 (one per dial)", rec.lookups)
	}
	if a := rec.attempts(); len(a) != 3 {
		t.Errorf("public dials = %v, want 3", a)
	}
	if n := can.accepts.Load(); n != 0 {
		t.Errorf("canary accepted %d connections, want 0", n)
	}
}

// TestMixedAnswers: a name with a loopback and a public address connects only to the public one.
func TestMixedAnswers(t *testing.T) {
	can := startCanaries(t, 1)
	port := can.ports[0]
	rec := newRecorder()
	rec.add("mixed.test", "127.0.0.1", "10.0.0.1", "93.184.215.14")
	c := mustClient(t, Config{AllowHTTP: true, Ports: []uint16{port}}, rec.hooks())
	_, err := get(c, fmt.Sprintf("http://mixed.test:%d/", port))
	var r *Refused
	if !errors.As(err, &r) || r.Reason != ReasonLoopback {
		t.Errorf("got %v, want the first error, refused loopback", err)
	}
	if a := rec.attempts(); len(a) != 1 || a[0].Addr().String() != "93.184.215.14" {
		t.Errorf("dialed %v, want only the public address", a)
	}
	if n := can.accepts.Load(); n != 0 {
		t.Errorf("canary accepted %d connections, want 0", n)
	}
}
