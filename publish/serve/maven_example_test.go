package serve_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// A node serves what its index of log entries publishes, with the bytes
// from its store, under /maven2/.
func ExampleNewMaven() {
	dir, _ := os.MkdirTemp("", "example-maven-*")
	defer os.RemoveAll(dir)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	x, _ := index.New()

	// An entry publishing one jar (in a node, entries come from the log).
	jar := []byte("the bytes of a jar")
	sum := sha256.Sum256(jar)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if err := st.Put(context.Background(), digest, int64(len(jar)), bytes.NewReader(jar)); err != nil {
		panic(err)
	}
	e := &publish.Entry{
		Ecosystem:  "maven",
		Coordinate: "org.example:hello-lib:1.0.0",
		Spec:       []byte(`{"coordinate":"org.example:hello-lib:1.0.0","ecosystem":"maven"}`),
		Subjects:   []publish.Subject{{Name: "hello-lib-1.0.0.jar", Digest: digest}},
		Envelopes:  []*dssepb.Envelope{{PayloadType: "application/vnd.in-toto+json", Payload: []byte("{}"), Signatures: []*dssepb.Signature{{Sig: []byte("sig")}}}},
	}
	e.InputDigest = e.SpecDigest()
	if err := x.Add(0, e); err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle(serve.MavenPrefix, serve.NewMaven(serve.MavenOptions{
		Index:   x,
		Content: serve.StoreContent{Store: st},
		Hint:    "pyrsia-build publish SPEC --node 127.0.0.1:7888",
	}))
	for _, path := range []string{
		"/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar",
		"/maven2/org/example/hello-lib/maven-metadata.xml",
		"/maven2/org/example/hello-lib/2.0.0/hello-lib-2.0.0.jar",
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		fmt.Printf("GET %s: %d %s\n%s\n", path, w.Code, w.Header().Get("Content-Type"), bytes.TrimSpace(w.Body.Bytes()))
	}
	// Output:
	// GET /maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar: 200 application/java-archive
	// the bytes of a jar
	// GET /maven2/org/example/hello-lib/maven-metadata.xml: 200 text/xml; charset=utf-8
	// <?xml version="1.0" encoding="UTF-8"?>
	// <metadata>
	//   <groupId>org.example</groupId>
	//   <artifactId>hello-lib</artifactId>
	//   <versioning>
	//     <latest>1.0.0</latest>
	//     <release>1.0.0</release>
	//     <versions>
	//       <version>1.0.0</version>
	//     </versions>
	//     <lastUpdated>19700101000001</lastUpdated>
	//   </versioning>
	// </metadata>
	// GET /maven2/org/example/hello-lib/2.0.0/hello-lib-2.0.0.jar: 404 text/plain; charset=utf-8
	// maven: org.example:hello-lib:2.0.0 is not published: no entry of the log serves org/example/hello-lib/2.0.0/hello-lib-2.0.0.jar
	// hint: pyrsia-build publish SPEC --node 127.0.0.1:7888
}
