package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/pyrsia/pyrsia-build/publish/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "store")
	defer os.RemoveAll(dir)
	s, err := store.Open(dir, store.Options{MaxBytes: 1 << 30})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	blob := []byte("a layer")
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	// Bytes that do not hash to the digest are refused, and nothing is kept.
	err = s.Put(context.Background(), digest, int64(len(blob)), bytes.NewReader([]byte("a liar!")))
	var de *store.DigestError
	fmt.Println(errors.As(err, &de), s.Has(digest))

	if err := s.Put(context.Background(), digest, int64(len(blob)), bytes.NewReader(blob)); err != nil {
		log.Fatal(err)
	}
	b, err := s.Open(digest)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	got, _ := io.ReadAll(b)
	fmt.Printf("%s, %d bytes\n", got, b.Size())
	// Output:
	// true false
	// a layer, 7 bytes
}
