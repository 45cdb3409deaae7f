package node

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// APITokenFile is the file, in the node's data folder, that holds the
// token a client must send (Authorization: Bearer TOKEN) to POST to the
// node's API. It is made (mode 0600) when the node starts with an API;
// 'pyrsia-build publish --data DIR' reads it. Only who can read the data
// folder can make the node request builds under its key.
const APITokenFile = "api.token"

// LoadAPIToken reads the API token of the node whose data folder is dir,
// making it if it does not exist yet.
func LoadAPIToken(dir string) (string, error) {
	path := filepath.Join(dir, APITokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("node: the API token in %s is shorter than 32 characters: delete the file, the node makes a new one", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("node: reading the API token: %w", err)
	}
	var r [32]byte
	rand.Read(r[:])
	tok := hex.EncodeToString(r[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("node: making the API token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("node: writing the API token %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("node: writing the API token %s: %w", path, err)
	}
	return tok, nil
}

// checkLocal refuses a request a web browser made for another site (any
// Origin header, or a Sec-Fetch-Site other than none or same-origin: the
// API has no web pages of its own) and a request whose Host is a name
// other than localhost (DNS rebinding: a site whose name resolves to this
// node's address). It returns the reason, or "".
func (n *Node) checkLocal(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return fmt.Sprintf("requests from web pages (Origin %q) are refused: use the pyrsia-build command", o)
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "none" && s != "same-origin" {
		return fmt.Sprintf("requests from web pages (Sec-Fetch-Site %q) are refused: use the pyrsia-build command", s)
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return ""
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Sprintf("Host %q is not this node's API address: use its IP address or localhost", r.Host)
	}
	if ip.IsLoopback() {
		return ""
	}
	if n.o.API != nil {
		if a, ok := n.o.API.Addr().(*net.TCPAddr); ok && (a.IP.IsUnspecified() || a.IP.Equal(ip)) {
			return ""
		}
	}
	return fmt.Sprintf("Host %q is not this node's API address", r.Host)
}

// localOnly wraps the API's handler with [Node.checkLocal].
func (n *Node) localOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := n.checkLocal(r); why != "" {
			httpErr(w, http.StatusForbidden, errors.New(why))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkPost checks a POST: local (checkLocal), a JSON or YAML body (a
// content type a web page cannot send without a CORS preflight), and the
// node's API token. It writes the refusal and returns false.
func (n *Node) checkPost(w http.ResponseWriter, r *http.Request) bool {
	if why := n.checkLocal(r); why != "" {
		httpErr(w, http.StatusForbidden, errors.New(why))
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		httpErr(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: send the spec as application/json or application/yaml", r.Header.Get("Content-Type")))
		return false
	case mt != "application/json" && mt != "application/yaml" && mt != "application/x-yaml":
		httpErr(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %s: send the spec as application/json or application/yaml", mt))
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if n.apiToken == "" || !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(n.apiToken)) != 1 {
		w.Header().Set("WWW-Authenticate", "Bearer")
		httpErr(w, http.StatusUnauthorized, fmt.Errorf("no or wrong API token: send the token in the node's DATA/%s (pyrsia-build publish --data DATA)", APITokenFile))
		return false
	}
	return true
}
