package httpserver

import (
	"net"
	"testing"
)

// Regression (review finding 9): the per-client connection limit keyed clients by their
// whole IP address. One IPv6 host routes a /64 (2^64 addresses): it opens
// MaxConnsPerClient connections from each of 64 addresses and takes all
// MaxConns, which locks every other client out, the attack the limit is
// there to stop.
func TestClientOfBucketsIPv6By64(t *testing.T) {
	a := clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1"), Port: 1})
	b := clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:dead:beef:0:7"), Port: 2})
	if a != b {
		t.Errorf("clientOf gives %q and %q for two addresses of one /64: one host counts as many clients", a, b)
	}
	if c := clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1"), Port: 1}); c == a {
		t.Errorf("clientOf gives %q for two different /64s", c)
	}
	v4 := clientOf(&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1})
	if mapped := clientOf(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}); mapped != v4 || v4 != "192.0.2.7" {
		t.Errorf("clientOf(192.0.2.7) = %q, of its IPv4-mapped form %q; want both 192.0.2.7", v4, mapped)
	}
	if other := clientOf(&net.TCPAddr{IP: net.ParseIP("192.0.2.8"), Port: 1}); other == v4 {
		t.Errorf("clientOf gives %q for two IPv4 addresses", other)
	}
}
