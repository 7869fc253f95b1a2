package ui

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxConfigBytes bounds the image config read for the manifest page.
const maxConfigBytes = 4 << 20

// referrerDepth bounds the referrers tree (a signature of an SBOM of an
// image is depth 2).
const referrerDepth = 4

// Manifest is one manifest with what its page shows.
type Manifest struct {
	Repository   string            `json:"repository"`
	Digest       digest.Digest     `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Subject      *Descriptor       `json:"subject,omitempty"`
	Config       *ImageConfig      `json:"config,omitempty"`
	Layers       []Descriptor      `json:"layers,omitempty"`
	// Manifests are an index's children with their platforms.
	Manifests []Descriptor `json:"manifests,omitempty"`
	Referrers []Referrer   `json:"referrers"`
}

// Descriptor is a blob or manifest a manifest names.
type Descriptor struct {
	MediaType    string        `json:"mediaType"`
	Digest       digest.Digest `json:"digest"`
	Size         int64         `json:"size"`
	ArtifactType string        `json:"artifactType,omitempty"`
	Platform     string        `json:"platform,omitempty"`
}

// ImageConfig is what the image config says of how the image runs.
type ImageConfig struct {
	Descriptor
	Created    *time.Time        `json:"created,omitempty"`
	Platform   string            `json:"platform,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        []string          `json:"env,omitempty"`
	WorkingDir string            `json:"workingDir,omitempty"`
	User       string            `json:"user,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	History    []History         `json:"history,omitempty"`
}

// History is one step of the image's build.
type History struct {
	Created    *time.Time `json:"created,omitempty"`
	CreatedBy  string     `json:"createdBy,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"emptyLayer,omitempty"`
}

// Referrer is a manifest whose subject is another (a signature, an
// attestation, an SBOM), with its own referrers.
type Referrer struct {
	Descriptor
	Annotations map[string]string `json:"annotations,omitempty"`
	Referrers   []Referrer        `json:"referrers,omitempty"`
}

// manifestBody is the union of an image manifest's and an index's fields.
type manifestBody struct {
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
	Subject      *ocispec.Descriptor  `json:"subject"`
	Annotations  map[string]string    `json:"annotations"`
}

// manifest reads manifest d of repo.
func (h *Handler) manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error) {
	m, err := h.store.GetManifest(ctx, repo, string(d))
	if err != nil {
		return Manifest{}, err
	}
	out := Manifest{Repository: repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Layers: []Descriptor{}, Referrers: []Referrer{}}
	var b manifestBody
	if err := json.Unmarshal(m.Content, &b); err != nil {
		return out, err
	}
	out.ArtifactType, out.Annotations = b.ArtifactType, b.Annotations
	if b.Subject != nil {
		s := descriptor(*b.Subject)
		out.Subject = &s
	}
	for _, l := range b.Layers {
		out.Layers = append(out.Layers, descriptor(l))
	}
	for _, c := range b.Manifests {
		out.Manifests = append(out.Manifests, descriptor(c))
	}
	if b.Config != nil {
		out.Config = h.imageConfig(ctx, *b.Config)
	}
	out.Referrers = h.referrers(ctx, repo, d, referrerDepth)
	return out, nil
}

func descriptor(d ocispec.Descriptor) Descriptor {
	out := Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: d.ArtifactType}
	if d.Platform != nil {
		out.Platform = platformString(d.Platform)
	}
	return out
}

// imageConfig reads the image config of a manifest of repo; other
// configs (an artifact's, often empty) show as their descriptor only.
func (h *Handler) imageConfig(ctx context.Context, desc ocispec.Descriptor) *ImageConfig {
	out := &ImageConfig{Descriptor: descriptor(desc)}
	switch desc.MediaType {
	case ocispec.MediaTypeImageConfig, "application/vnd.docker.container.image.v1+json":
	default:
		return out
	}
	if desc.Size > maxConfigBytes {
		return out
	}
	// The manifest is in repo, so its config is one repo may read; no
	// StatBlob, which would count as a client's use of the blob.
	rc, err := h.store.OpenBlob(ctx, desc.Digest, 0)
	if err != nil {
		return out
	}
	defer rc.Close()
	var img ocispec.Image
	if err := json.NewDecoder(io.LimitReader(rc, maxConfigBytes)).Decode(&img); err != nil {
		return out
	}
	out.Created = nonZero(img.Created)
	if img.OS != "" {
		out.Platform = platformString(&img.Platform)
	}
	c := img.Config
	out.Entrypoint, out.Cmd, out.Env, out.WorkingDir, out.User, out.Labels = c.Entrypoint, c.Cmd, c.Env, c.WorkingDir, c.User, c.Labels
	for _, hs := range img.History {
		out.History = append(out.History, History{Created: nonZero(hs.Created), CreatedBy: hs.CreatedBy, Comment: hs.Comment, EmptyLayer: hs.EmptyLayer})
	}
	return out
}

// referrers returns the tree of manifests in repo that refer to d, down
// to depth levels.
func (h *Handler) referrers(ctx context.Context, repo string, d digest.Digest, depth int) []Referrer {
	descs, err := h.store.Referrers(ctx, repo, d)
	if err != nil || depth == 0 {
		return nil
	}
	out := make([]Referrer, 0, len(descs))
	for _, desc := range descs {
		out = append(out, Referrer{
			Descriptor:  descriptor(desc),
			Annotations: desc.Annotations,
			Referrers:   h.referrers(ctx, repo, desc.Digest, depth-1),
		})
	}
	return out
}

// nonZero drops the zero time that reproducible builds write.
func nonZero(t *time.Time) *time.Time {
	if t == nil || t.IsZero() || t.Unix() <= 0 {
		return nil
	}
	return t
}
