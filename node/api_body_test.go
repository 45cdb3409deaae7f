package node

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestReadBody: a body up to the limit is read whole; one over it gets 413
// and one that cannot be read 400, each with a message naming the body.
func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  *http.Request
		ok   bool
		code int
		msg  string
	}{
		{"at the limit", httptest.NewRequest("POST", "/", strings.NewReader("12345678")), true, http.StatusOK, ""},
		{"over the limit", httptest.NewRequest("POST", "/", strings.NewReader("123456789")), false, http.StatusRequestEntityTooLarge, "the spec is over 8 bytes"},
		{"unreadable", httptest.NewRequest("POST", "/", failingReader{}), false, http.StatusBadRequest, "reading the spec: connection reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			b, ok := readBody(w, tc.req, 8, "the spec")
			if ok != tc.ok || w.Code != tc.code {
				t.Fatalf("got ok %v, code %d (%s); want ok %v, code %d", ok, w.Code, w.Body, tc.ok, tc.code)
			}
			if ok && string(b) != "12345678" {
				t.Errorf("body %q, want the whole body", b)
			}
			if !strings.Contains(w.Body.String(), tc.msg) {
				t.Errorf("answer %q does not say %q", w.Body, tc.msg)
			}
		})
	}
}
