package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/storage"
)

func TestErrorEnvelope(t *testing.T) {
	codes := []Code{CodeBlobUnknown, CodeBlobUploadInvalid, CodeBlobUploadUnknown, CodeDigestInvalid, CodeManifestBlobUnknown,
		CodeManifestInvalid, CodeManifestUnknown, CodeNameInvalid, CodeNameUnknown, CodeSizeInvalid, CodeUnauthorized,
		CodeDenied, CodeUnsupported, CodeTooManyRequests, CodeTagInvalid, CodeRangeInvalid, CodeManifestTooLarge,
		CodePaginationInvalid, CodeNotFound, CodeUnavailable, CodeStorageFull, CodeUnknown}
	for _, c := range codes {
		t.Run(c.Value, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeError(w, httptest.NewRequest("GET", "/v2/", nil), &Error{Code: c, Detail: map[string]string{"k": "v"}})
			if w.Code != c.Status {
				t.Errorf("status = %d, want %d", w.Code, c.Status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var eb errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || len(eb.Errors) != 1 {
				t.Fatalf("body = %s, %v", w.Body, err)
			}
			if e := eb.Errors[0]; e.Code != c.Value || e.Message != c.Message || fmt.Sprint(e.Detail) != "map[k:v]" {
				t.Errorf("entry = %+v, want code %s message %q", e, c.Value, c.Message)
			}
		})
	}
}

func TestStorageErrorsMapToCodes(t *testing.T) {
	for _, m := range storageCodes {
		err := fmt.Errorf("context: %w", m.err)
		if got := asError(err).Code; got != m.code {
			t.Errorf("asError(%v) = %s, want %s", err, got.Value, m.code.Value)
		}
	}
	if got := asError(errors.New("disk on fire")); got.Code != CodeUnknown || got.Message != "internal error" {
		t.Errorf("asError(unknown) = %+v, want UNKNOWN without detail", got)
	}
	if got := asError(&http.MaxBytesError{Limit: 4}).Code; got != CodeManifestTooLarge {
		t.Errorf("asError(MaxBytesError) = %s", got.Value)
	}
	_ = storage.ErrNotFound
}

func TestStorageFullHidesPaths(t *testing.T) {
	err := fmt.Errorf("upload x: %w: write /data/uploads/x: no space left on device", storage.ErrStorageFull)
	got := asError(err)
	if got.Code != CodeStorageFull || got.Message != "" {
		t.Errorf("asError(%v) = %+v, want STORAGE_FULL with its own message", err, got)
	}
	w := httptest.NewRecorder()
	writeError(w, httptest.NewRequest("PATCH", "/v2/", nil), err)
	if w.Code != http.StatusInsufficientStorage {
		t.Errorf("status = %d, want 507", w.Code)
	}
}

func TestUpstreamUnavailableHidesAddress(t *testing.T) {
	err := fmt.Errorf("%w: Get \"https://10.0.0.7:5000/v2/team/app/manifests/v1\": 502 Bad Gateway", mirror.ErrUpstreamUnavailable)
	got := asError(err)
	if got.Code != CodeUnavailable || got.Message != "upstream registry unavailable" {
		t.Errorf("asError(%v) = %+v, want UNAVAILABLE with message %q", err, got, "upstream registry unavailable")
	}
}
