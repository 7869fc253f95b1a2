package ui

import (
	"encoding/json"
	"net/http"

	"github.com/nora-registry/nora/registry"
)

// The API answers with the registry's codes and envelope; codeInvalid is
// its own, for a search glob that does not parse.
var codeInvalid = registry.Code{Value: "INVALID", Status: http.StatusBadRequest, Message: "invalid query"}

func apiError(c registry.Code, msg string) *registry.Error {
	return &registry.Error{Code: c, Message: msg}
}

// message is what an error page says.
func message(e *registry.Error) string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.Message
}

func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
