package exchange

import (
	"context"
	"strings"
	"testing"
)

// A blob of unknown size comes in one request of at most MaxRequestLength
// bytes. With a larger MaxUnknownSize, a blob between the two was asked
// for, the honest provider sent the MaxRequestLength bytes a request
// allows, and the fetcher dropped it for good as breaking the protocol.
// New refuses such a bound instead.
func TestMaxUnknownSizeWithinARequest(t *testing.T) {
	o := Options{Host: newHost(t), Store: newStore(t), Namespace: "test", MaxUnknownSize: MaxRequestLength + 1}
	x, err := New(context.Background(), o)
	if err == nil {
		x.Close()
		t.Fatal("New took a MaxUnknownSize over MaxRequestLength")
	}
	if !strings.Contains(err.Error(), "MaxUnknownSize") {
		t.Errorf("error %q does not name MaxUnknownSize", err)
	}
	o.MaxUnknownSize = MaxRequestLength
	x, err = New(context.Background(), o)
	if err != nil {
		t.Fatalf("MaxUnknownSize of MaxRequestLength: %v", err)
	}
	x.Close()
}
