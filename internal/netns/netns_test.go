package netns

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// newNet builds a network for a test, or skips when not root (in CI the
// tests run as root, so they run there); as root without ip or tc, it fails.
func newNet(t *testing.T, o Options) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns: needs root (network namespaces, veth links and tc): run the test as root")
	}
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	if o.Prefix == "" {
		o.Prefix = "pbnettest"
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// listen listens on TCP on host i's address.
func listen(t *testing.T, n *Net, i int) net.Listener {
	t.Helper()
	var ln net.Listener
	err := n.Do(i, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(n.Hosts()[i].IP.String(), "0"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from host i to addr.
func dial(n *Net, i int, addr string) (c net.Conn, err error) {
	err = n.Do(i, func() error {
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	})
	return c, err
}

// sendTime is how long host from takes to send size bytes to host to over
// TCP, until the receiver has read them all.
func sendTime(t *testing.T, n *Net, from, to, size int) time.Duration {
	t.Helper()
	ln := listen(t, n, to)
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		m, err := io.Copy(io.Discard, c)
		if err == nil && m != int64(size) {
			err = fmt.Errorf("read %d bytes, want %d", m, size)
		}
		got <- err
	}()
	c, err := dial(n, from, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func TestShapedUplink(t *testing.T) {
	const mbit, size = 40, 2 << 20 // 5 MB/s: 2 MiB in 0.42 s
	n := newNet(t, Options{Hosts: 3, UplinkMbit: mbit})
	want := time.Duration(float64(size*8) / (mbit * 1e6) * float64(time.Second))
	for _, c := range []struct{ from, to int }{{0, 1}, {2, 0}} {
		took := sendTime(t, n, c.from, c.to, size)
		// The bucket (128 KiB) lets 6 % through at once; allow 15 %.
		if took < want*85/100 {
			t.Errorf("host %d sent 2 MiB to host %d in %v at %d Mbit/s, want at least %v", c.from, c.to, took, mbit, want*85/100)
		}
		if took > 10*want {
			t.Errorf("host %d sent 2 MiB to host %d in %v, want about %v", c.from, c.to, took, want)
		}
	}
}

func TestUnshapedIsFaster(t *testing.T) {
	n := newNet(t, Options{Hosts: 2})
	if took := sendTime(t, n, 0, 1, 16<<20); took > 2*time.Second {
		t.Errorf("16 MiB took %v unshaped (more than 64 Mbit/s)", took)
	}
}

func TestDelay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netns: needs root (network namespaces, veth links and tc): run the test as root")
	}
	n, err := New(Options{Hosts: 2, Delay: 40 * time.Millisecond, Prefix: "pbnettest"})
	if errors.Is(err, ErrNoNetem) {
		t.Skip(err) // a kernel without CONFIG_NET_SCH_NETEM
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ln := listen(t, n, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	start := time.Now()
	c, err := dial(n, 0, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The SYN waits 40 ms on host 0, the SYN-ACK 40 ms on host 1.
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("a TCP handshake took %v with 40 ms each way, want at least 80 ms", took)
	}
}

// A host reaches the other hosts, not the caller's loopback.
func TestIsolated(t *testing.T) {
	n := newNet(t, Options{Hosts: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if c, err := dial(n, 0, ln.Addr().String()); err == nil {
		c.Close()
		t.Errorf("host 0 reached %s, a listener on the caller's loopback", ln.Addr())
	}
	// And Command runs a program in the host's namespace.
	out, err := n.Command(1, "ip", "-brief", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), n.Hosts()[1].IP.String()+"/") {
		t.Errorf("ip addr on host 1: %q, want its address %s", out, n.Hosts()[1].IP)
	}
}

func TestCloseDeletesAll(t *testing.T) {
	n := newNet(t, Options{Hosts: 3, UplinkMbit: 10})
	if got := namespaces(n.Name()); len(got) != 4 {
		t.Fatalf("namespaces of %s: %q, want the switch and 3 hosts", n.Name(), got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := namespaces(n.Name()); len(got) != 0 {
		t.Errorf("after Close: %q are left", got)
	}
	if err := n.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// Sweep deletes a run's namespaces once its process is gone, not those of
// a live process.
func TestSweep(t *testing.T) {
	newNet(t, Options{Hosts: 1}) // skips unless root
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("pbnetsweep-%d.1-0", gone.Process.Pid)
	live := fmt.Sprintf("pbnetsweep-%d.1-0", os.Getppid())
	for _, name := range []string{dead, live} {
		if err := run("netns add "+name+"\n", "ip", "-batch", "-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { deleteAll([]string{dead, live}) })
	if err := Sweep("pbnetsweep"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s (process gone) is still there after Sweep", dead)
	}
	if _, err := os.Stat("/run/netns/" + live); err != nil {
		t.Errorf("%s (process alive) was deleted by Sweep: %v", live, err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"no hosts", Options{}, "0 hosts"},
		{"bad prefix", Options{Hosts: 1, Prefix: "a/b"}, `prefix "a/b"`},
		{"negative rate", Options{Hosts: 1, UplinkMbit: -1}, "uplink -1"},
		{"negative delay", Options{Hosts: 1, Delay: -time.Second}, "delay -1s"},
		{"small MTU", Options{Hosts: 1, MTU: 100}, "MTU 100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New(%+v): %v, want an error with %q", c.o, err, c.want)
			}
		})
	}
}

// Every host reaches every other at once, in a network with more pairs
// of hosts than the kernel's neighbour table holds (gc_thresh3, one table
// for all namespaces, 1024 entries by default): with addresses resolved by
// ARP, the dials past that failed ("neighbor table overflow" in the
// kernel's log), and the fan-out's fetchers could not reach the seed from
// the 51st on.
func TestAllPairsPastTheNeighbourTable(t *testing.T) {
	limit := 1024
	if b, err := os.ReadFile("/proc/sys/net/ipv4/neigh/default/gc_thresh3"); err == nil {
		fmt.Sscan(string(b), &limit)
	}
	hosts := 2
	for hosts*(hosts-1) <= limit+limit/4 {
		hosts++
	}
	if hosts > MaxHosts {
		t.Skipf("gc_thresh3 is %d: more pairs than %d hosts have", limit, MaxHosts)
	}
	n := newNet(t, Options{Hosts: hosts})
	addrs := make([]string, hosts)
	for i := range hosts {
		ln := listen(t, n, i)
		addrs[i] = ln.Addr().String()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	errs := make(chan error, hosts)
	for from := range hosts {
		go func() {
			failed, first := 0, error(nil)
			err := n.Do(from, func() error {
				for to := range hosts {
					if to == from {
						continue
					}
					c, err := net.DialTimeout("tcp", addrs[to], 5*time.Second)
					if err != nil {
						failed++
						first = cmp.Or(first, err)
						continue
					}
					c.Close()
				}
				return nil
			})
			if err == nil && failed > 0 {
				err = fmt.Errorf("host %d: %d of %d dials failed; the first: %w", from, failed, hosts-1, first)
			}
			errs <- err
		}()
	}
	for range hosts {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
