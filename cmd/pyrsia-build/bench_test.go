package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
)

// BenchmarkVerifyCommand compares, on one artifact of PYRSIA_BENCH_SIZE
// bytes (default 1 GiB), the whole `pyrsia-build verify` process with a bare
// in-process SHA-256 of the file and with `cosign verify-blob-attestation`
// on the same file and bundle. Each process reports its peak resident
// memory as maxrss-MiB.
func BenchmarkVerifyCommand(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("PYRSIA_BENCH_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("PYRSIA_BENCH_SIZE=%q: %v", s, err)
		}
		size = n
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "pyrsia-build")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	artifact := filepath.Join(dir, "artifact.bin")
	writeBenchFile(b, artifact, size)
	env := append(os.Environ(), "COSIGN_PASSWORD=bench", "COSIGN_MAX_ATTACHMENT_SIZE=4GiB")
	runCmd := func(name string, args ...string) *os.ProcessState {
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return cmd.ProcessState
	}
	runCmd(bin, "keygen")
	runCmd(bin, "attest", "--key", "cosign.key", "artifact.bin")
	trustedRoot := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(trustedRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		b.Fatal(err)
	}

	b.Run("sha256-in-process", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			f, err := os.Open(artifact)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := attest.SHA256(context.Background(), f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("pyrsia-build-verify", func(b *testing.B) {
		b.SetBytes(size)
		var rss int64
		for i := 0; i < b.N; i++ {
			ps := runCmd(bin, "verify", "--key", "cosign.pub", "artifact.bin")
			rss = max(rss, maxRSS(ps))
		}
		b.ReportMetric(float64(rss)/1024, "maxrss-MiB")
	})
	b.Run("cosign-verify-blob-attestation", func(b *testing.B) {
		cosign, err := exec.LookPath("cosign")
		if err != nil {
			b.Skip("cosign is not on PATH: PATH=\"$(scripts/install-cosign.sh):$PATH\"")
		}
		b.SetBytes(size)
		var rss int64
		for i := 0; i < b.N; i++ {
			ps := runCmd(cosign, "verify-blob-attestation", "--key", "cosign.pub",
				"--bundle", "artifact.bin.sigstore.json", "--new-bundle-format",
				"--trusted-root", trustedRoot, "--insecure-ignore-tlog=true",
				"--type", "slsaprovenance1", "artifact.bin")
			rss = max(rss, maxRSS(ps))
		}
		b.ReportMetric(float64(rss)/1024, "maxrss-MiB")
	})
}

// maxRSS returns a finished process's peak resident set in KiB.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// writeBenchFile writes size bytes of a repeated random block.
func writeBenchFile(b *testing.B, path string, size int64) {
	block := make([]byte, 1<<20)
	rand.Read(block)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for left := size; left > 0; left -= int64(len(block)) {
		if _, err := f.Write(block[:min(left, int64(len(block)))]); err != nil {
			b.Fatal(err)
		}
	}
}
