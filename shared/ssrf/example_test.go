package ssrf_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/myscrollr/connect/shared/ssrf"
)

func Example() {
	client, err := ssrf.NewClient(ssrf.Config{}) // production: https, port 443, public addresses
	if err != nil {
		panic(err)
	}
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"https://127.1/",
		"https://[::ffff:10.0.0.1]/",
		"https://[64:ff9b::7f00:1]/",
		"gopher://example.com/",
		"http://example.com/",
	} {
		_, err := client.Get(context.Background(), u)
		var refused *ssrf.Refused
		if errors.As(err, &refused) {
			fmt.Println(u, "->", refused.Reason)
		}
	}
	// Output:
	// http://169.254.169.254/latest/meta-data/ -> metadata
	// https://127.1/ -> host
	// https://[::ffff:10.0.0.1]/ -> private
	// https://[64:ff9b::7f00:1]/ -> loopback
	// gopher://example.com/ -> scheme
	// http://example.com/ -> scheme
}
