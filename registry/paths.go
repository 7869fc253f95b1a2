package registry

import (
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Repository names, tags and digests as the distribution spec defines them.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
// Names and tags are checked by hand rather than by the spec's regular
// expressions, which cost a microsecond per request; the fuzz tests hold the
// two to the same answers.
const (
	nameRegexp = `^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`
	tagRegexp  = `^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`
)

// maxNameLength keeps "host/name" within the 255 characters clients accept.
const maxNameLength = 255

// validName reports whether name matches nameRegexp and fits the length
// limit: path components of lowercase alphanumerics joined by one '.', one
// or two '_', or any number of '-'.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength {
		return false
	}
	for comp := range strings.SplitSeq(name, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

func validComponent(c string) bool {
	if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
		return false
	}
	for i := 1; i < len(c); i++ {
		switch ch := c[i]; {
		case isAlnum(ch), ch == '-':
		case ch == '.':
			if !isAlnum(c[i-1]) || !isAlnum(c[i+1]) {
				return false
			}
		case ch == '_':
			if c[i-1] == '_' { // the second of "__"
				if i < 2 || !isAlnum(c[i-2]) || !isAlnum(c[i+1]) {
					return false
				}
			} else if !isAlnum(c[i-1]) || !(isAlnum(c[i+1]) || c[i+1] == '_') {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isAlnum(ch byte) bool { return 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' }

// validTag reports whether tag matches tagRegexp.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		ch := tag[i]
		if !isAlnum(ch) && !('A' <= ch && ch <= 'Z') && ch != '_' && ch != '.' && ch != '-' {
			return false
		}
	}
	return true
}

// parseDigest accepts only the algorithms the registry can verify.
func parseDigest(s string) (digest.Digest, error) {
	if canonicalDigest(s) {
		return digest.Digest(s), nil
	}
	d, err := digest.Parse(s)
	if err != nil {
		return "", apiError(CodeDigestInvalid, "invalid digest "+quote(s))
	}
	if d.Algorithm() != digest.SHA256 && d.Algorithm() != digest.SHA512 {
		return "", apiError(CodeDigestInvalid, "unsupported digest algorithm "+quote(string(d.Algorithm())))
	}
	return d, nil
}

// canonicalDigest reports whether s is a sha256 or sha512 digest with its
// hex in lower case, the form every client sends, which digest.Parse
// accepts too: checked without the regular expression Parse runs, the
// cost of a third of a manifest PUT's parsing. Anything else goes to
// Parse (FuzzParseDigest holds the two to the same answers).
func canonicalDigest(s string) bool {
	var hex string
	switch {
	case len(s) == 7+64 && s[:7] == "sha256:":
		hex = s[7:]
	case len(s) == 7+128 && s[:7] == "sha512:":
		hex = s[7:]
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}

// apiPath is a /v2/ path split into the repository name and what follows.
type apiPath struct {
	name   string
	suffix string // the route's fixed part, e.g. "/manifests/"
	last   string // the reference, digest or upload id after it
}

// The resource suffixes that follow a repository name, matched from the end
// of the path because names contain slashes.
var suffixes = []string{"/manifests/", "/blobs/uploads/", "/blobs/", "/tags/", "/referrers/"}

// parsePath splits the escaped path p after "/v2/" into name and route and
// validates both. ok is false when p is not a repository route (the base
// and catalog endpoints, or no route at all).
func parsePath(p string) (ap apiPath, ok bool, err error) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ap, false, nil
	}
	head, last := p[:i+1], p[i+1:]
	if strings.HasSuffix(head, "/blobs/") && last == "uploads" {
		head, last = head+"uploads/", "" // POST …/blobs/uploads without the slash
	}
	for _, s := range suffixes {
		if !strings.HasSuffix(head, s) {
			continue
		}
		ap = apiPath{name: head[:len(head)-len(s)], suffix: s, last: last}
		if s == "/tags/" && last != "list" {
			return ap, false, nil
		}
		return ap, true, ap.validate()
	}
	return ap, false, nil
}

func (ap apiPath) validate() error {
	if !validName(ap.name) {
		return apiError(CodeNameInvalid, "invalid repository name "+quote(ap.name))
	}
	switch ap.suffix {
	case "/manifests/":
		if strings.ContainsRune(ap.last, ':') {
			_, err := parseDigest(ap.last)
			return err
		}
		if !validTag(ap.last) {
			return apiError(CodeTagInvalid, "invalid tag "+quote(ap.last))
		}
	case "/blobs/", "/referrers/":
		_, err := parseDigest(ap.last)
		return err
	case "/blobs/uploads/":
		if strings.ContainsAny(ap.last, "%./") {
			return apiError(CodeBlobUploadUnknown, "invalid upload id")
		}
	}
	return nil
}

// rewrite returns the path ServeMux sees: the name as one escaped segment,
// so a wildcard can match it.
func (ap apiPath) rewrite() (path, raw string) {
	return "/v2/" + ap.name + ap.suffix + ap.last, "/v2/" + url.PathEscape(ap.name) + ap.suffix + ap.last
}
