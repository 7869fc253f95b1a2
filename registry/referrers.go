package registry

import (
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// referrers lists the manifests whose subject is the digest, optionally
// only those of one artifactType. Nothing referring is an empty index.
// For a mirrored repository the upstream's index is passed on when the
// upstream answers; else the cache's referrers are listed.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
func (h *handler) referrers(w http.ResponseWriter, r *http.Request) error {
	if rt, ok := mirrorRoute(r); ok {
		index, filters, err := h.mirror.Referrers(r.Context(), rt, digest.Digest(r.PathValue("digest")), r.URL.Query().Get("artifactType"))
		if err == nil {
			if filters != "" {
				w.Header().Set("OCI-Filters-Applied", filters)
			}
			w.Header().Set("Content-Type", v1.MediaTypeImageIndex)
			w.Header().Set("Content-Length", strconv.Itoa(len(index)))
			w.Write(index)
			return nil
		}
		// Upstream failed or has no referrers API: the cache answers.
	}
	descs, err := h.store.Referrers(r.Context(), r.PathValue("name"), digest.Digest(r.PathValue("digest")))
	if err != nil {
		return err
	}
	if at := r.URL.Query().Get("artifactType"); at != "" {
		kept := descs[:0]
		for _, d := range descs {
			if d.ArtifactType == at {
				kept = append(kept, d)
			}
		}
		descs = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, v1.MediaTypeImageIndex, v1.Index{
		Versioned: ocispec.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: descs,
	})
}
