package registry

import "net/http"

// AsError returns the Error that err answers as: its own, the code of the
// storage or auth failure it wraps, else UNKNOWN.
func AsError(err error) *Error { return asError(err) }

// WriteError writes err in the OCI error envelope with its code's status,
// as every /v2/ error is written. The dashboard's API shares it.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, err) }
