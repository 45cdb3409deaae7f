package httpserver

import (
	"net"
	"os"
	"testing"
)

// Review finding: the per-client connection limit keys clients by their
// whole IP address. One IPv6 host routes a /64 (2^64 addresses): it opens
// MaxConnsPerClient connections from each of 64 addresses and takes all
// MaxConns, which locks every other client out, the attack the limit is
// there to stop.
func TestReviewIPv6ClientsBySubnet(t *testing.T) {
	if os.Getenv("PYRSIA_REVIEW") == "" {
		t.Skip("review finding: per-client limit is per IPv6 address, not per /64")
	}
	a := clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1"), Port: 1})
	b := clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:dead:beef:0:7"), Port: 2})
	if a != b {
		t.Errorf("clientOf gives %q and %q for two addresses of one /64: one host counts as many clients", a, b)
	}
}
