package serve

import (
	"fmt"
	"regexp"
	"strings"
)

// The grammar of the OCI distribution spec (v1.1, "Pulling manifests").
var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

// Bounds on what a request may name. Docker's own registry refuses names
// over 255 characters; a path longer than a name, a route and a digest is
// not one of ours.
const (
	maxName = 255
	maxPath = 1024
)

// routeKind is what an OCI request path asks for.
type routeKind int

const (
	routeBase      routeKind = iota // /v2/
	routeManifest                   // /v2/<name>/manifests/<reference>
	routeBlob                       // /v2/<name>/blobs/<digest>
	routeTags                       // /v2/<name>/tags/list
	routeUpload                     // /v2/<name>/blobs/uploads/...: pushes
	routeReferrers                  // /v2/<name>/referrers/<digest>
	routeCatalog                    // /v2/_catalog
)

// route is a parsed OCI request path. For routeManifest, exactly one of
// tag and digest is set; digest is "sha256:<64 hex>" (the only algorithm
// content is published under), or another algorithm's digest that is
// well-formed (found nowhere).
type route struct {
	kind   routeKind
	name   string
	tag    string
	digest string
}

// pathError is a request path or reference that the spec's grammar
// refuses: code is the spec's error code, status the HTTP status.
type pathError struct {
	status int
	code   string
	msg    string
}

func (e *pathError) Error() string { return e.msg }

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// parsePath parses the path of a request to the OCI face (the URL's
// decoded path, starting with /v2). It never fails with anything but a
// *pathError.
func parsePath(p string) (route, error) {
	if len(p) > maxPath {
		return route{}, &pathError{400, "NAME_INVALID", fmt.Sprintf("request path of %d bytes is over the limit of %d", len(p), maxPath)}
	}
	rest, ok := strings.CutPrefix(p, "/v2")
	if !ok || (rest != "" && rest[0] != '/') {
		return route{}, &pathError{404, "NAME_UNKNOWN", fmt.Sprintf("path %s is not under /v2/", quote(p))}
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return route{kind: routeBase}, nil
	}
	if rest == "_catalog" {
		return route{kind: routeCatalog}, nil
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	var r route
	var nameSegs []string
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		r.kind, nameSegs = routeTags, segs[:n-2]
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads",
		n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		// /blobs/uploads/ (a trailing slash leaves an empty last segment)
		// or /blobs/uploads/<id>.
		k := n - 2
		if segs[n-2] == "uploads" {
			k = n - 3
		}
		r.kind, nameSegs = routeUpload, segs[:k]
	case n >= 3 && segs[n-2] == "manifests":
		r.kind, nameSegs = routeManifest, segs[:n-2]
		ref := segs[n-1]
		if strings.Contains(ref, ":") {
			d, err := parseDigest(ref)
			if err != nil {
				return route{}, err
			}
			r.digest = d
		} else if !tagRE.MatchString(ref) {
			// Nothing can be published under a tag the grammar refuses:
			// it is unknown (the conformance suite asks for a 404).
			return route{}, &pathError{404, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest tag %s is not a valid tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}): nothing is published under it", quote(ref))}
		} else {
			r.tag = ref
		}
	case n >= 3 && segs[n-2] == "blobs":
		r.kind, nameSegs = routeBlob, segs[:n-2]
		d, err := parseDigest(segs[n-1])
		if err != nil {
			return route{}, err
		}
		r.digest = d
	case n >= 3 && segs[n-2] == "referrers":
		r.kind, nameSegs = routeReferrers, segs[:n-2]
	default:
		return route{}, &pathError{404, "NAME_UNKNOWN", fmt.Sprintf("path %s is not an OCI distribution API path (/v2/<name>/manifests/<reference>, /v2/<name>/blobs/<digest>, /v2/<name>/tags/list)", quote(p))}
	}
	name := strings.Join(nameSegs, "/")
	if len(name) > maxName {
		return route{}, &pathError{400, "NAME_INVALID", fmt.Sprintf("repository name of %d characters is over the limit of %d", len(name), maxName)}
	}
	if !nameRE.MatchString(name) {
		return route{}, &pathError{400, "NAME_INVALID", fmt.Sprintf("repository name %s is not valid: lowercase letters and digits in components separated by '.', '_', '__' or '-', components joined by '/'", quote(name))}
	}
	r.name = name
	return r, nil
}

// parseDigest checks a digest from a request.
func parseDigest(s string) (string, error) {
	if !digestRE.MatchString(s) {
		return "", &pathError{400, "DIGEST_INVALID", fmt.Sprintf("digest %s is not algorithm:encoded (such as sha256:<64 hex digits>)", quote(s))}
	}
	alg, enc, _ := strings.Cut(s, ":")
	if alg == "sha256" {
		if len(enc) != 64 || strings.Trim(enc, "0123456789abcdef") != "" {
			return "", &pathError{400, "DIGEST_INVALID", fmt.Sprintf("digest %s is not sha256:<64 lowercase hex digits>", quote(s))}
		}
	}
	return s, nil
}
