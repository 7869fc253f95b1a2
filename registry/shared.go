package registry

import "net/http"

// What the registry shares with handlers served next to /v2/ (the
// dashboard): its name grammar, its error envelope, and its request ids,
// access log and metrics.

// AsError returns the Error that err answers as: its own, the code of the
// storage or auth failure it wraps, else UNKNOWN.
func AsError(err error) *Error { return asError(err) }

// ValidName reports whether name is a repository name the registry
// serves (the distribution spec's grammar, at most 255 characters).
func ValidName(name string) bool { return validName(name) }

// WriteError writes err in the OCI error envelope with its code's status,
// as every /v2/ error is written.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, err) }

// WithHandler serves the ServeMux patterns given with h, inside the
// registry's request ids, access log and metrics. The patterns must not
// overlap the registry's own routes.
func WithHandler(h http.Handler, patterns ...string) Option {
	return func(rh *handler) {
		for _, p := range patterns {
			rh.others = append(rh.others, mounted{p, h})
		}
	}
}

type mounted struct {
	pattern string
	h       http.Handler
}
