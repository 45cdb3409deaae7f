// Package netns builds a small network of Linux network namespaces on one
// machine, for benchmarks that should see links rather than loopback: each
// host is a namespace of its own with one interface, eth0, whose other end
// is on a bridge in a switch namespace of its own; each host's egress can be
// shaped to a rate (tc tbf) and delayed (tc netem). Nothing is changed in
// the namespace of the caller: the bridge, its ports and the hosts live in
// the run's own namespaces, and [Net.Close] deletes them all. Hosts know
// each other's link addresses from the start (permanent neighbour entries):
// no ARP, whose entries the kernel bounds for all namespaces together.
//
// A program runs on host i under [Net.Command] (ip netns exec), or a
// function under [Net.Do] (the calling goroutine's thread enters the
// namespace; sockets made there stay in it). It needs root, ip and tc
// (iproute2): [Available] says whether they are here.
//
// # Names
//
// Every namespace of a run is named <prefix>-<pid>.<seq>-<what> (what is
// sw, the switch, or the host's number), so runs never clash and a run's
// leftovers can be told from another live run's: a process killed before
// its Close leaves its namespaces behind, and the next [New] of the same
// prefix deletes those of processes that are gone ([Sweep]).
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure a [Net].
type Options struct {
	// Hosts is the number of hosts (at least 1, at most [MaxHosts]).
	Hosts int
	// UplinkMbit shapes every host's egress to this many megabits per
	// second (10^6 bits; tc tbf); 0: not shaped.
	UplinkMbit float64
	// Delay is added to every packet a host sends (tc netem), so a round
	// trip between two hosts takes twice as long; 0: none. Not every
	// kernel has netem ([ErrNoNetem]).
	Delay time.Duration
	// MTU of the hosts' links: default 1500.
	MTU int
	// Prefix starts the name of every namespace of the run: letters,
	// digits and '_' (default "pbnet").
	Prefix string
}

// Host is one host of a [Net].
type Host struct {
	NS  string           // its namespace's name (under /run/netns)
	IP  netip.Addr       // its address on eth0
	MAC net.HardwareAddr // eth0's: every other host knows it (no ARP)
}

// Net is a running network of namespaces. Close it.
type Net struct {
	opts   Options
	run    string // <prefix>-<pid>.<seq>
	sw     string // the switch namespace
	hosts  []Host
	closed bool
}

// ErrNoNetem is the error of [New] with a Delay on a kernel without the
// netem qdisc (CONFIG_NET_SCH_NETEM); use errors.Is.
var ErrNoNetem = errors.New("netns: a delay needs the kernel's netem qdisc (CONFIG_NET_SCH_NETEM), which this kernel lacks")

var (
	seq      atomic.Int64
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,20}$`)
)

// subnet holds the hosts' addresses: host i is subnet's address i+1.
var subnet = netip.MustParsePrefix("10.99.0.0/16")

// Available says why this process cannot build a Net (nil if it can).
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("netns: needs root (network namespaces, veth links and tc)")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netns: %s (iproute2) is not on PATH: %w", tool, err)
		}
	}
	return nil
}

// New builds the network: the switch namespace with its bridge, and
// o.Hosts host namespaces linked to it, shaped as o says. On an error it
// deletes what it made.
func New(o Options) (*Net, error) {
	if o.Prefix == "" {
		o.Prefix = "pbnet"
	}
	if o.MTU == 0 {
		o.MTU = 1500
	}
	switch {
	case !prefixRE.MatchString(o.Prefix):
		return nil, fmt.Errorf("netns: prefix %q: want 1 to 20 letters, digits or '_'", o.Prefix)
	case o.Hosts < 1 || o.Hosts > MaxHosts:
		return nil, fmt.Errorf("netns: %d hosts: want 1 to %d", o.Hosts, MaxHosts)
	case o.UplinkMbit < 0:
		return nil, fmt.Errorf("netns: uplink %v Mbit/s: want 0 (unshaped) or more", o.UplinkMbit)
	case o.Delay < 0:
		return nil, fmt.Errorf("netns: delay %v: want 0 or more", o.Delay)
	case o.MTU < 576 || o.MTU > 65535:
		return nil, fmt.Errorf("netns: MTU %d: want 576 to 65535", o.MTU)
	}
	if err := Available(); err != nil {
		return nil, err
	}
	Sweep(o.Prefix)
	n := &Net{opts: o, run: fmt.Sprintf("%s-%d.%d", o.Prefix, os.Getpid(), seq.Add(1))}
	n.sw = n.run + "-sw"
	ip := subnet.Addr()
	for i := range o.Hosts {
		ip = ip.Next()
		mac := net.HardwareAddr{0x02, 0x70, 0x62, byte(i >> 16), byte(i >> 8), byte(i)} // locally administered
		n.hosts = append(n.hosts, Host{NS: fmt.Sprintf("%s-%d", n.run, i), IP: ip, MAC: mac})
	}
	if err := n.build(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// build runs the ip and tc commands that make the network.
func (n *Net) build() error {
	var root, sw strings.Builder
	fmt.Fprintf(&root, "netns add %s\n", n.sw)
	for _, h := range n.hosts {
		fmt.Fprintf(&root, "netns add %s\n", h.NS)
	}
	fmt.Fprintf(&sw, "link set lo up\nlink add br0 mtu %d type bridge\nlink set br0 up\n", n.opts.MTU)
	for i, h := range n.hosts {
		// The port's end in the switch is p<i>, the host's end eth0.
		fmt.Fprintf(&root, "link add name p%d mtu %d netns %s type veth peer name eth0 mtu %d address %s netns %s\n", i, n.opts.MTU, n.sw, n.opts.MTU, h.MAC, h.NS)
		fmt.Fprintf(&sw, "link set p%d master br0 up\n", i)
	}
	if err := run(root.String(), "ip", "-batch", "-"); err != nil {
		return err
	}
	if err := run(sw.String(), "ip", "-n", n.sw, "-batch", "-"); err != nil {
		return err
	}
	bits := subnet.Bits()
	for i, h := range n.hosts {
		var cmds strings.Builder
		fmt.Fprintf(&cmds, "link set lo up\naddr add %s/%d dev eth0\nlink set eth0 up\n", h.IP, bits)
		// Every other host's address is a permanent neighbour entry, not
		// learnt by ARP: the kernel's neighbour table is one for all
		// namespaces, and its learnt entries are bounded (gc_thresh3,
		// 1024 by default); past that a host's connect to a new address
		// timed out (the kernel logs "neighbor table overflow"), and so
		// could the machine's own. Permanent entries are not counted.
		for j, o := range n.hosts {
			if j != i {
				fmt.Fprintf(&cmds, "neigh replace %s lladdr %s dev eth0 nud permanent\n", o.IP, o.MAC)
			}
		}
		if err := run(cmds.String(), "ip", "-n", h.NS, "-batch", "-"); err != nil {
			return err
		}
		if cmds := n.qdiscs(); cmds != "" {
			err := run(cmds, "tc", "-n", h.NS, "-batch", "-")
			if err != nil && n.opts.Delay > 0 && strings.Contains(err.Error(), "qdisc kind is unknown") {
				return fmt.Errorf("%w (%w)", ErrNoNetem, err)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// qdiscs are the tc commands that shape a host's egress: netem (a delay)
// at the root, tbf (the rate) under it, or either alone.
func (n *Net) qdiscs() string {
	var b strings.Builder
	parent := "root"
	if d := n.opts.Delay; d > 0 {
		// A queue long enough for a delay's worth at any rate used here.
		fmt.Fprintf(&b, "qdisc add dev eth0 root handle 1: netem delay %dus limit 100000\n", d.Microseconds())
		parent = "parent 1:1"
	}
	if r := n.opts.UplinkMbit; r > 0 {
		bps := int64(r * 1e6)
		// The bucket: 5 ms at the rate, and at least two 64 KiB segments,
		// so that tbf need not split the kernel's large (GSO) segments;
		// up to 100 ms of queue behind it.
		burst := max(bps/8/200, 128<<10)
		fmt.Fprintf(&b, "qdisc add dev eth0 %s handle 10: tbf rate %dbit burst %d latency 100ms\n", parent, bps, burst)
	}
	return b.String()
}

// Hosts returns the hosts, in order.
func (n *Net) Hosts() []Host { return n.hosts }

// Name returns the run's name, which starts every namespace's name.
func (n *Net) Name() string { return n.run }

// Command returns the command that runs name with args on host i, as
// exec.Command does (ip netns exec execs it in its own process: the
// Cmd's process is the program's).
func (n *Net) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.hosts[i].NS, name}, args...)...)
}

// Do runs f with the calling goroutine's thread in host i's namespace:
// the sockets f makes (net.Listen, net.Dial) are on host i, and stay there
// after Do returns. Other goroutines f starts are not in it.
func (n *Net) Do(i int, f func() error) error {
	return do(n.hosts[i].NS, f)
}

func do(ns string, f func() error) error {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: this thread's namespace: %w", err)
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: entering %s: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so the runtime ends it with the
		// goroutine instead of running others in the wrong namespace.
		return fmt.Errorf("netns: leaving %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Close deletes every namespace of the network (their links go with
// them; a namespace goes once its last process has ended). It can be
// called more than once.
func (n *Net) Close() error {
	if n.closed {
		return nil
	}
	n.closed = true
	return deleteAll(namespaces(n.run))
}

// deleteAll deletes the named namespaces that exist.
func deleteAll(names []string) error {
	var cmds strings.Builder
	for _, name := range names {
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			fmt.Fprintf(&cmds, "netns delete %s\n", name)
		}
	}
	if cmds.Len() == 0 {
		return nil
	}
	return run(cmds.String(), "ip", "-force", "-batch", "-")
}

// namespaces lists the namespaces whose names start with run + "-".
func namespaces(run string) []string {
	ents, _ := os.ReadDir("/run/netns")
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), run+"-") {
			names = append(names, e.Name())
		}
	}
	return names
}

// Sweep deletes the namespaces of prefix's runs whose process has ended:
// what a run killed before its Close left behind.
func Sweep(prefix string) error {
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-([0-9]+)\.[0-9]+-`)
	var stale []string
	for _, name := range namespaces(prefix) {
		m := re.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			stale = append(stale, name)
		}
	}
	return deleteAll(stale)
}

// run runs name with args, cmds on its standard input.
func run(cmds string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(cmds)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netns: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// MaxHosts is the most hosts a [Net] has: every host has a permanent
// neighbour entry for each other (MaxHosts² in all, some 500 bytes of
// kernel memory each).
const MaxHosts = 500
