package builder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// What a spec from the network may make the node connect to
//
// A build node has a network position its requesters do not: its own
// loopback services, the cloud metadata service at 169.254.169.254, the
// private networks it sits in. A spec from the network names the hosts the
// node fetches its source from, so every connection made for such a spec
// is checked when it is made, after the name was resolved: the dialer's
// Control hook refuses any address that is not on the public internet
// ([nonPublic]). Checking the resolved address, not the name in the spec,
// is what holds against names that resolve to internal addresses, DNS
// rebinding and redirects. [Spec.ValidateRemote] refuses the obvious cases
// (localhost, IP literals, numeric hosts) already at parse time, with an
// error that names the field.
//
// The node's operator may allow hosts that are not public
// ([RemoteOptions].AllowHosts: an internal git server, a local mirror);
// both checks then let those hosts, at the ports the entries give, through
// ([netGuard]), and nothing else.
//
// Archive URLs are fetched by [netGuard.httpClient]: that dialer, no proxy
// from the environment (a proxy would make the connection, unchecked), and
// at most [maxRedirects] redirects, each dialled through the same check.
// git runs with http.proxy set to a proxy of this process on 127.0.0.1
// ([gitProxy]), which makes git's connections through that dialer: git (and
// curl under it) never resolves or dials the host itself.

// maxRedirects bounds the redirects an archive download follows.
const maxRedirects = 5

// RefusedAddressError is a connection, made for a spec from the network,
// to an address that is not on the public internet. The message leaves
// out the address (which says what a name resolves to inside the node's
// network); Addr has it for the node's own log. Use errors.As.
type RefusedAddressError struct {
	Addr   netip.AddrPort
	Reason string // what kind of address it is: "loopback", "private", ...
}

func (e *RefusedAddressError) Error() string {
	return fmt.Sprintf("builder: refused to connect to a %s address for a spec from the network (only addresses on the public internet may be fetched)", e.Reason)
}

// remoteAddrCheck decides whether a spec from the network may make the
// node connect to a: nil, or why not. Tests that serve on 127.0.0.1
// replace it.
var remoteAddrCheck = func(a netip.AddrPort) error {
	if why := nonPublic(a.Addr()); why != "" {
		return &RefusedAddressError{Addr: a, Reason: why}
	}
	return nil
}

// netGuard is how a build of a spec from the network connects: every
// address is checked ([remoteAddrCheck]) unless the operator's allowlist
// ([RemoteOptions].AllowHosts) names it. The zero netGuard allows nothing
// more.
type netGuard struct {
	allow allowList
}

// newNetGuard is the guard of o; it fails on a bad allowlist entry.
func newNetGuard(o RemoteOptions) (*netGuard, error) {
	l, err := o.allowList()
	if err != nil {
		return nil, err
	}
	return &netGuard{allow: l}, nil
}

// dialContext dials address (host:port, as a transport or a CONNECT
// gives it) with a Control hook that runs after the name was resolved and
// before each address tried is connected to. An address is allowed when
// the allowlist names the dialled host at the resolved port, or names the
// address and port themselves; otherwise [remoteAddrCheck] decides.
func (g *netGuard) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("builder: refused to connect to %q for a spec from the network: not host:port", address)
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, resolved string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(resolved)
			if err != nil {
				return fmt.Errorf("builder: refused to connect to %q for a spec from the network: not an IP address and port", resolved)
			}
			if g.allow.permitsHost(host, ap.Port()) || g.allow.permitsAddr(ap) {
				return nil
			}
			return remoteAddrCheck(ap)
		}}
	return d.DialContext(ctx, network, address)
}

// transport is an HTTP transport whose every connection goes through
// [netGuard.dialContext], and never through a proxy.
func (g *netGuard) transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       30 * time.Second,
	}
}

// httpClient fetches for a spec from the network (see the top of this
// file).
func (g *netGuard) httpClient() *http.Client {
	return &http.Client{Transport: g.transport(), CheckRedirect: checkRedirect}
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("builder: more than %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
		return fmt.Errorf("builder: redirect to a %q URL (only http and https are followed)", req.URL.Scheme)
	}
	return nil
}

// nonPublic says why a is not an address on the public internet: its kind
// ("loopback", "private", ...), or "" for a public address. IPv4-mapped
// IPv6 addresses are judged as the IPv4 address they map, and so are the
// IPv4 addresses inside NAT64 and 6to4 ones.
func nonPublic(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	for _, r := range reservedPrefixes {
		if r.p.Contains(a) {
			return r.why
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64Prefix.Contains(a):
			if why := nonPublic(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
				return why + " (in NAT64)"
			}
		case sixToFourPrefix.Contains(a):
			if why := nonPublic(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
				return why + " (in 6to4)"
			}
		}
	}
	if !a.IsGlobalUnicast() {
		return "non-unicast"
	}
	return ""
}

var (
	nat64Prefix     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourPrefix = netip.MustParsePrefix("2002::/16")
)

// reservedPrefixes are the special-purpose ranges (IANA's registries)
// that netip's predicates do not cover and that are not the public
// internet.
var reservedPrefixes = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // and 255.255.255.255
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol"}, // Teredo among them
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// gitProxy is an HTTP proxy on 127.0.0.1 that git uses (http.proxy) for
// a spec from the network: it tunnels CONNECT (https) and forwards
// absolute-form requests (http), making every connection with
// [netGuard.dialContext]. It remembers the first connection it refused, so
// that the error of a failed clone can name the cause.
type gitProxy struct {
	g   *netGuard
	ln  net.Listener
	srv *http.Server
	tr  *http.Transport
	rp  *httputil.ReverseProxy

	mu      sync.Mutex
	refused error
	conns   sync.WaitGroup
	closing chan struct{}
}

func startGitProxy(g *netGuard) (*gitProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("builder: git proxy: %w", err)
	}
	p := &gitProxy{g: g, ln: ln, tr: g.transport(), closing: make(chan struct{})}
	p.rp = &httputil.ReverseProxy{
		// The request is already in absolute form; it is sent as it
		// is, without hop-by-hop and proxy headers (ReverseProxy drops
		// those).
		Rewrite:      func(*httputil.ProxyRequest) {},
		Transport:    p.tr,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) { p.fail(w, err) },
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// URL is the proxy's URL, for git's http.proxy.
func (p *gitProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Refused returns the first connection the proxy refused, or nil.
func (p *gitProxy) Refused() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Close stops the proxy and its tunnels.
func (p *gitProxy) Close() {
	close(p.closing)
	p.srv.Close()
	p.tr.CloseIdleConnections()
	p.conns.Wait()
}

func (p *gitProxy) fail(w http.ResponseWriter, err error) {
	var ra *RefusedAddressError
	if errors.As(err, &ra) {
		p.mu.Lock()
		if p.refused == nil {
			p.refused = ra
		}
		p.mu.Unlock()
		http.Error(w, ra.Error(), http.StatusForbidden)
		return
	}
	http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
}

func (p *gitProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.tunnel(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		p.rp.ServeHTTP(w, r)
	default:
		http.Error(w, "proxy: want CONNECT or an absolute http URL", http.StatusBadRequest)
	}
}

// tunnel answers CONNECT host:port: it dials the host through the check
// and copies bytes both ways until either side closes.
func (p *gitProxy) tunnel(w http.ResponseWriter, r *http.Request) {
	up, err := p.g.dialContext(r.Context(), "tcp", r.Host)
	if err != nil {
		p.fail(w, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "proxy: cannot tunnel", http.StatusInternalServerError)
		return
	}
	down, brw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if _, err := io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		up.Close()
		down.Close()
		return
	}
	p.conns.Add(1)
	go func() {
		defer p.conns.Done()
		p.splice(up, down, brw.Reader)
	}()
}

// splice copies between the upstream connection and the client (whose
// buffered reader may hold bytes already read) until one side ends or the
// proxy closes.
func (p *gitProxy) splice(up, down net.Conn, downR *bufio.Reader) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, downR); closeWrite(up); done <- struct{}{} }()
	go func() { io.Copy(down, up); closeWrite(down); done <- struct{}{} }()
	select {
	case <-done:
		select {
		case <-done:
		case <-p.closing:
		}
	case <-p.closing:
	}
	up.Close()
	down.Close()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	} else {
		c.Close()
	}
}

// withRemoteRefusal returns the connection refusal inside err, if any, so
// that a failed fetch names the cause and not the transport's wrapping.
func withRemoteRefusal(err error) error {
	var ra *RefusedAddressError
	if errors.As(err, &ra) {
		return ra
	}
	return err
}
