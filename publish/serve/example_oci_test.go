package serve_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// A node mounts the OCI face at /v2/ over its index of verified log
// entries and a content source; here an empty index and the node's own
// store.
func ExampleNewOCI() {
	dir, _ := os.MkdirTemp("", "node")
	defer os.RemoveAll(dir)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	x, _ := index.New()

	mux := http.NewServeMux()
	mux.Handle("/v2/", serve.NewOCI(serve.OCIOptions{
		Index:   x,
		Content: serve.StoreContent{Store: st},
		Hint:    "request it with: pyrsia-build publish SPEC --node ADDR",
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v2/hello/manifests/1.0")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode)
	fmt.Println(string(body))
	// Output:
	// 404
	// {"errors":[{"code":"NAME_UNKNOWN","message":"repository \"hello\" is not published by this node's build network: request it with: pyrsia-build publish SPEC --node ADDR","detail":{"name":"hello"}}]}
}
