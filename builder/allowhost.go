package builder

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// RemoteOptions are a node operator's exceptions to the rules for specs
// from the network (see [Spec.ValidateRemote]).
type RemoteOptions struct {
	// AllowHosts are source hosts that are not on the public internet
	// and that specs from the network may fetch from anyway: an internal
	// git server, a local mirror. An entry is "host:port" or "host"
	// (any port); host is a name, an IPv4 address, or an IPv6 address
	// ("[::1]:8080", or "::1" without a port). There are no wildcards.
	//
	// An entry allows a URL whose host (and port, or the scheme's
	// default port) it names, at parse time; and, when connecting, a
	// connection dialled for that host and port, whatever address the
	// name resolves to, and a connection to an entry's IP address and
	// port, whatever name led there. Every other connection is still
	// checked: an allowed name cannot reach another port of its
	// address, nor redirect to another internal host.
	AllowHosts []string
}

// Validate checks the entries of o.AllowHosts; the error names the first
// bad one.
func (o RemoteOptions) Validate() error {
	_, err := o.allowList()
	return err
}

func (o RemoteOptions) allowList() (allowList, error) {
	var l allowList
	for _, s := range o.AllowHosts {
		e, err := parseAllowHost(s)
		if err != nil {
			return nil, err
		}
		l = append(l, e)
	}
	return l, nil
}

// allowEntry is one parsed entry of [RemoteOptions].AllowHosts.
type allowEntry struct {
	name string     // a host name, lowercase, no trailing dot; "" for an address
	addr netip.Addr // an IP address (unmapped), if not a name
	port uint16     // 0: any port
}

type allowList []allowEntry

// hostNameRE is a host name an allowlist entry may give: labels of
// letters, digits, '-' and '_'.
var hostNameRE = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$`)

func parseAllowHost(s string) (allowEntry, error) {
	bad := func(why string) (allowEntry, error) {
		return allowEntry{}, fmt.Errorf("builder: allowed source host %q: %s; give HOST or HOST:PORT, like git.internal, 10.0.0.5:8080 or [fd00::1]:443", s, why)
	}
	if strings.Contains(s, "/") {
		return bad("not a host (give no scheme or path)")
	}
	host, port, hasPort := s, "", false
	switch n := strings.Count(s, ":"); {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
	case strings.HasPrefix(s, "[") || n == 1:
		h, p, err := splitHostPort(s)
		if err != nil {
			return bad("not host:port")
		}
		host, port, hasPort = h, p, true
	}
	var e allowEntry
	if hasPort {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", port))
		}
		e.port = uint16(p)
	}
	host = normHost(host)
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return bad("an address with a zone cannot be allowed")
		}
		e.addr = a.Unmap()
		return e, nil
	}
	labels := strings.Split(host, ".")
	if host == "" || !hostNameRE.MatchString(host) || numericLabelRE.MatchString(labels[len(labels)-1]) {
		return bad("not a host name or an IP address")
	}
	e.name = host
	return e, nil
}

// splitHostPort is [net.SplitHostPort] for "host:port" and "[v6]:port".
func splitHostPort(s string) (host, port string, err error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", "", fmt.Errorf("no port")
	}
	host, port = s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", "", fmt.Errorf("unclosed [")
		}
		host = host[1 : len(host)-1]
	} else if strings.ContainsAny(host, "[]") {
		return "", "", fmt.Errorf("stray [ or ]")
	}
	return host, port, nil
}

// normHost is a host as entries and URLs are compared: lowercase, without
// a trailing dot.
func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// permitsHost says whether the list allows the host (a name or an IP
// address, as a URL or a dial gives it) at port.
func (l allowList) permitsHost(host string, port uint16) bool {
	host = normHost(host)
	a, err := netip.ParseAddr(host)
	isAddr := err == nil && a.Zone() == ""
	for _, e := range l {
		if e.port != 0 && e.port != port {
			continue
		}
		if isAddr && e.addr.IsValid() && a.Unmap() == e.addr {
			return true
		}
		if !isAddr && e.name != "" && e.name == host {
			return true
		}
	}
	return false
}

// permitsAddr says whether an address entry of the list names ap.
func (l allowList) permitsAddr(ap netip.AddrPort) bool {
	a := ap.Addr().WithZone("").Unmap()
	for _, e := range l {
		if e.addr.IsValid() && e.addr == a && (e.port == 0 || e.port == ap.Port()) {
			return true
		}
	}
	return false
}

// defaultPort is the port a URL of scheme connects to without one.
func defaultPort(scheme string) uint16 {
	switch strings.ToLower(scheme) {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}
