package serve

import "testing"

// An entry's coordinate is name:tag split at its last colon, so an entry
// "hello:5000/x:1" (a coordinate whose name part is "hello:5000/x", which
// the entry format allows) publishes nothing under "hello" or "v9": the
// repository of a request is the coordinate's whole name, never a prefix
// of it that ends at another colon.
func TestOCIRepositoryIsTheWholeName(t *testing.T) {
	f := newFixture(t)
	for i, c := range []string{"hello:5000/x:1", "v9:5000/y:2"} {
		if err := f.idx.Add(uint64(6+i), ociEntry(c, f.other.digest(), c)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path   string
		status int
		code   string
	}{
		// other's blobs are published under other and team/tool only.
		{"/v2/hello/blobs/" + digestOf(f.other.config), 404, "BLOB_UNKNOWN"},
		{"/v2/hello/blobs/" + digestOf(f.other.layers[0]), 404, "BLOB_UNKNOWN"},
		{"/v2/v9/blobs/" + digestOf(f.other.config), 404, "NAME_UNKNOWN"},
		{"/v2/v9/tags/list", 404, "NAME_UNKNOWN"},
		{"/v2/v9/manifests/" + f.other.digest(), 404, "NAME_UNKNOWN"},
		{"/v2/library/v9/blobs/" + digestOf(f.other.config), 404, "NAME_UNKNOWN"},
		// What is published under hello still is.
		{"/v2/hello/blobs/" + digestOf(f.v2.config), 200, ""},
		{"/v2/other/blobs/" + digestOf(f.other.config), 200, ""},
	}
	for _, tt := range tests {
		r := f.do(t, "GET", tt.path)
		if r.status != tt.status {
			t.Errorf("GET %s: %d %s, want %d", tt.path, r.status, r.body, tt.status)
			continue
		}
		if tt.code != "" {
			if code, _ := errorCode(t, r); code != tt.code {
				t.Errorf("GET %s: %s, want %s", tt.path, code, tt.code)
			}
		}
	}
	if r := f.do(t, "GET", "/v2/hello/tags/list"); string(r.body) != `{"name":"hello","tags":["1.0","2.0","latest"]}` {
		t.Errorf("tags of hello: %s", r.body)
	}
}
