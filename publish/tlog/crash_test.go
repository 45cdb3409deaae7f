package tlog

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// TestCrash kills a writing process with SIGKILL at random moments, again
// and again, and checks after each restart that every acknowledged entry
// is there with its bytes, and that the tree verifies.
func TestCrash(t *testing.T) {
	if os.Getenv("PYRSIA_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	kills := 50
	if s := os.Getenv("PYRSIA_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(nil, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	acked := make(map[uint64]string) // index → sha256 of the entry
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < kills; k++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
		cmd.Env = append(os.Environ(), "PYRSIA_CRASH_CHILD=1", "PYRSIA_CRASH_DIR="+dir, "PYRSIA_CRASH_KEY="+skey, fmt.Sprintf("PYRSIA_CRASH_ROUND=%d", k))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				got = append(got, sc.Text())
				mu.Unlock()
			}
		}()
		// Wait until the child is writing, then kill it at a random moment.
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()
		for _, line := range got {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "ack" {
				continue // the last line may be cut
			}
			idx, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			if prev, ok := acked[idx]; ok && prev != f[2] {
				t.Fatalf("round %d: index %d acknowledged twice with different entries", k, idx)
			}
			acked[idx] = f[2]
		}
		checkAfterCrash(t, dir, signer, acked, k)
	}
	t.Logf("%d kills, %d acknowledged entries, all present", kills, len(acked))
}

func checkAfterCrash(t *testing.T, dir string, signer note.Signer, acked map[uint64]string, round int) {
	t.Helper()
	seen := make(map[uint64]string)
	l, err := Open(context.Background(), Options{Dir: dir, Origin: testOrigin, Signer: signer, Logger: quiet,
		Visit: func(i uint64, e []byte) error {
			sum := sha256.Sum256(e)
			seen[i] = hex.EncodeToString(sum[:])
			return nil
		}})
	if err != nil {
		t.Fatalf("round %d: reopening after the kill: %v", round, err)
	}
	defer l.Close()
	for idx, h := range acked {
		if seen[idx] != h {
			t.Fatalf("round %d: acknowledged entry %d is lost or changed (got %q)", round, idx, seen[idx])
		}
	}
	cp, err := publishCommit(l, context.Background())
	if err != nil {
		t.Fatalf("round %d: publish: %v", round, err)
	}
	if cp.Size == 0 {
		return
	}
	for _, i := range []uint64{0, cp.Size / 3, cp.Size - 1} {
		e, err := l.Entry(context.Background(), i)
		if err != nil {
			t.Fatalf("round %d: entry %d: %v", round, i, err)
		}
		p, err := l.InclusionProof(context.Background(), i, cp.Size)
		if err != nil {
			t.Fatalf("round %d: proof %d: %v", round, i, err)
		}
		if err := proof.VerifyInclusion(hasher, i, cp.Size, hasher.HashLeaf(e), p, cp.Hash); err != nil {
			t.Fatalf("round %d: entry %d does not verify: %v", round, i, err)
		}
	}
}

// crashChild appends from several writers, printing each acknowledgement,
// and publishes checkpoints, until it is killed.
func crashChild() {
	dir := os.Getenv("PYRSIA_CRASH_DIR")
	round := os.Getenv("PYRSIA_CRASH_ROUND")
	signer, err := note.NewSigner(os.Getenv("PYRSIA_CRASH_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child key:", err)
		os.Exit(3)
	}
	l, err := Open(context.Background(), Options{Dir: dir, Origin: testOrigin, Signer: signer, Logger: quiet, SegmentSize: 64 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; ; i++ {
				e := []byte(fmt.Sprintf("round %s writer %d entry %d %s", round, g, i, strings.Repeat("y", (g*i)%700)))
				batch := [][]byte{e}
				var idx uint64
				var err error
				if g%4 == 3 {
					// Some writers append batches of four.
					batch = append(batch, append(e, 'b'), append(e, 'c'), append(e, 'd'))
					idx, err = l.AppendBatch(context.Background(), batch)
				} else {
					idx, err = l.Append(context.Background(), e)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(3)
				}
				mu.Lock()
				for k, be := range batch {
					sum := sha256.Sum256(be)
					fmt.Fprintf(w, "ack %d %x\n", idx+uint64(k), sum)
				}
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	for {
		time.Sleep(5 * time.Millisecond)
		if _, err := publishCommit(l, context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "child publish:", err)
			os.Exit(3)
		}
	}
}
