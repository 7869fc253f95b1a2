package registry

import (
	"encoding/json"
	"mime"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nora-registry/nora/storage"
)

// Manifest media types the registry accepts.
const (
	mediaTypeOCIManifest    = ocispec.MediaTypeImageManifest
	mediaTypeOCIIndex       = ocispec.MediaTypeImageIndex
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeign  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

var manifestKinds = map[string]bool{ // media type → is an index
	mediaTypeOCIManifest:    false,
	mediaTypeDockerManifest: false,
	mediaTypeOCIIndex:       true,
	mediaTypeDockerList:     true,
}

// maxManifestSize is the largest manifest accepted, as most registries.
const maxManifestSize = 4 << 20

// manifestJSON holds the fields of every accepted manifest kind.
type manifestJSON struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// parseManifest validates a manifest's bytes against the Content-Type it
// was sent with and returns what the store must know and check. The digest
// is left for the caller to set.
// https://github.com/opencontainers/image-spec/blob/main/manifest.md
func parseManifest(contentType string, body []byte) (storage.Manifest, error) {
	var mj manifestJSON
	if err := json.Unmarshal(body, &mj); err != nil {
		return storage.Manifest{}, apiError(CodeManifestInvalid, "malformed JSON: "+err.Error())
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if _, known := manifestKinds[mt]; !known {
		mt = mj.MediaType
	}
	if mt == "" {
		mt = mediaTypeOCIManifest
		if mj.Manifests != nil && mj.Config == nil {
			mt = mediaTypeOCIIndex
		}
	}
	isIndex, known := manifestKinds[mt]
	if !known {
		return storage.Manifest{}, apiError(CodeManifestInvalid, "unsupported manifest media type "+quote(mt))
	}
	if mj.MediaType != "" && mj.MediaType != mt {
		return storage.Manifest{}, apiError(CodeManifestInvalid, "mediaType "+quote(mj.MediaType)+" does not match Content-Type "+quote(mt))
	}
	if mj.SchemaVersion == nil || *mj.SchemaVersion != 2 {
		return storage.Manifest{}, apiError(CodeManifestInvalid, "schemaVersion must be 2")
	}
	m := storage.Manifest{MediaType: mt, ArtifactType: mj.ArtifactType, Annotations: mj.Annotations}
	if mj.Subject != nil {
		if err := checkDescriptor("subject", *mj.Subject); err != nil {
			return m, err
		}
		m.Subject = mj.Subject.Digest
	}
	if isIndex {
		if mj.Config != nil || mj.Layers != nil {
			return m, apiError(CodeManifestInvalid, "an index has no config or layers")
		}
		for _, d := range mj.Manifests {
			if err := checkDescriptor("manifests", d); err != nil {
				return m, err
			}
			m.Manifests = append(m.Manifests, d.Digest)
		}
		return m, nil
	}
	if mj.Config == nil {
		return m, apiError(CodeManifestInvalid, "config is required")
	}
	if mj.Manifests != nil {
		return m, apiError(CodeManifestInvalid, "an image manifest has no manifests list")
	}
	if err := checkDescriptor("config", *mj.Config); err != nil {
		return m, err
	}
	m.Blobs = append(m.Blobs, mj.Config.Digest)
	if m.ArtifactType == "" {
		m.ArtifactType = mj.Config.MediaType
	}
	for _, l := range mj.Layers {
		if err := checkDescriptor("layers", l); err != nil {
			return m, err
		}
		if !nonDistributable(l.MediaType) {
			m.Blobs = append(m.Blobs, l.Digest)
		}
	}
	return m, nil
}

func checkDescriptor(field string, d ocispec.Descriptor) error {
	if d.MediaType == "" {
		return apiError(CodeManifestInvalid, field+": descriptor without mediaType")
	}
	if d.Size < 0 {
		return apiError(CodeManifestInvalid, field+": negative size")
	}
	if _, err := parseDigest(string(d.Digest)); err != nil {
		return apiError(CodeManifestInvalid, field+": invalid digest "+quote(string(d.Digest)))
	}
	return nil
}

// nonDistributable layers (foreign layers) may be referenced without being
// pushed: clients fetch them from their URLs.
func nonDistributable(mediaType string) bool {
	switch mediaType {
	case mediaTypeDockerForeign,
		ocispec.MediaTypeImageLayerNonDistributable,     //nolint:staticcheck // still in use
		ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return true
	}
	return false
}

// manifestDigest is the digest of body under the algorithm of want, or
// sha256 when the manifest is put by tag.
func manifestDigest(body []byte, want digest.Digest) digest.Digest {
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
	}
	return alg.FromBytes(body)
}
