package ui

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// Page sizes: the default, and the most one request may ask for.
const (
	defaultPage = 50
	maxPage     = 1000
	// storePage is how many names one store read lists while filtering.
	storePage = 1000
)

func checkName(name string) error {
	if !registry.ValidName(name) {
		return apiError(registry.CodeNameInvalid, "invalid repository name")
	}
	return nil
}

// RepoList is one page of repositories.
type RepoList struct {
	Query        string   `json:"query,omitempty"`
	Repositories []string `json:"repositories"`
	// Next is the `last` of the next page, "" on the last page.
	Next string `json:"next,omitempty"`
	// In another order than by name (see sortKeys): the order, where the
	// page starts, the figures of its repositories, when they were
	// counted, and where the next page starts (0 on the last).
	Sort       string        `json:"sort,omitempty"`
	Offset     int           `json:"offset,omitempty"`
	Summaries  []RepoSummary `json:"summaries,omitempty"`
	CountedAt  time.Time     `json:"countedAt,omitzero"`
	NextOffset int           `json:"nextOffset,omitempty"`
}

// matcher compiles a search: a repository glob, or, without any glob
// character, a substring of the name.
func matcher(q string) (func(string) bool, error) {
	if q == "" {
		return func(string) bool { return true }, nil
	}
	if !strings.ContainsAny(q, "*?[{") {
		return func(name string) bool { return strings.Contains(name, q) }, nil
	}
	m, err := auth.RepoGlob(q)
	if err != nil {
		return nil, apiError(codeInvalid, "invalid glob: "+err.Error())
	}
	return m, nil
}

// repositories lists up to n names after last, in lexical order, that
// match q and that c may pull. The store pages names in order, so a page
// costs what it skips, never the whole list.
func (h *Handler) repositories(ctx context.Context, c caller, q, last string, n int) (RepoList, error) {
	match, err := matcher(q)
	if err != nil {
		return RepoList{}, err
	}
	out := RepoList{Query: q, Repositories: []string{}}
	for {
		names, more, err := h.store.Repositories(ctx, last, storePage)
		if err != nil {
			return out, err
		}
		for _, name := range names {
			if !match(name) || !c.mayList(name) {
				continue
			}
			if len(out.Repositories) == n {
				out.Next = out.Repositories[n-1]
				return out, nil
			}
			out.Repositories = append(out.Repositories, name)
		}
		if !more || len(names) == 0 {
			return out, nil
		}
		last = names[len(names)-1]
	}
}

// Tag is one tag of a repository.
type Tag struct {
	Name      string        `json:"name"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType,omitempty"`
	// Size is the manifest's and its blobs' bytes; for an index, with
	// its children's (each blob counted once).
	Size      int64     `json:"size"`
	Platforms []string  `json:"platforms,omitempty"`
	Pushed    time.Time `json:"pushed"`
	// LastUsed is the manifest's latest pull, or HEAD by digest.
	LastUsed *time.Time `json:"lastUsed,omitempty"`
	// Signed reports a signature of the manifest: a referrer whose
	// artifact type is a signature's (cosign, Notary, a Sigstore
	// bundle), or cosign's sha256-<hex>.sig tag.
	Signed bool `json:"signed"`
}

// signatureTypes are the artifact types of signatures among referrers.
var signatureTypes = []string{
	"application/vnd.dev.cosign.artifact.sig.v1+json",
	"application/vnd.dev.sigstore.bundle.v0.3+json",
	"application/vnd.cncf.notary.signature",
}

// signed reports whether manifest d of repo has a signature, tags being
// the repository's tag names.
func (h *Handler) signed(ctx context.Context, repo string, d digest.Digest, tags map[string]bool) bool {
	if tags["sha256-"+d.Encoded()+".sig"] {
		return true
	}
	refs, err := h.store.Referrers(ctx, repo, d)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(refs, func(r ocispec.Descriptor) bool { return slices.Contains(signatureTypes, r.ArtifactType) })
}

// TagList is one page of a repository's tags, in lexical order.
type TagList struct {
	Repository string `json:"repository"`
	Tags       []Tag  `json:"tags"`
	Total      int    `json:"total"`
	Next       string `json:"next,omitempty"`
}

// tags lists up to n tags of repo after last.
func (h *Handler) tags(ctx context.Context, repo, last string, n int) (TagList, error) {
	r, err := h.store.Repository(ctx, repo)
	if err != nil {
		return TagList{}, err
	}
	out := TagList{Repository: repo, Tags: []Tag{}, Total: len(r.Tags)}
	manifests := make(map[digest.Digest]*storage.GCManifest, len(r.Manifests))
	for i := range r.Manifests {
		manifests[r.Manifests[i].Digest] = &r.Manifests[i]
	}
	var page []storage.GCTag
	names := make(map[string]bool, len(r.Tags))
	for i, t := range r.Tags {
		names[t.Name] = true
		if last != "" && t.Name <= last {
			continue
		}
		if len(page) == n {
			if out.Next == "" {
				out.Next = r.Tags[i-1].Name
			}
			continue
		}
		page = append(page, t)
	}
	var need []digest.Digest
	for _, t := range page {
		need = append(need, blobsOf(manifests, t.Digest)...)
	}
	sizes := h.store.BlobSizes(ctx, need)
	for _, t := range page {
		tag := Tag{Name: t.Name, Digest: t.Digest, Pushed: t.Pushed}
		if m := manifests[t.Digest]; m != nil {
			tag.Size = m.Size
			for _, c := range m.Manifests {
				if cm := manifests[c]; cm != nil {
					tag.Size += cm.Size
				}
			}
			if !m.Used.IsZero() {
				tag.LastUsed = &m.Used
			}
		}
		for _, d := range blobsOf(manifests, t.Digest) {
			tag.Size += sizes[d]
		}
		// GetManifest, not StatManifest: a HEAD-like stat by digest
		// counts as use, which keeps a manifest from GC for a while.
		if m, err := h.store.GetManifest(ctx, repo, string(t.Digest)); err == nil {
			tag.MediaType = m.MediaType
			if isIndex(m.MediaType) {
				tag.Platforms = platforms(m.Content)
			}
		}
		tag.Signed = h.signed(ctx, repo, t.Digest, names)
		out.Tags = append(out.Tags, tag)
	}
	return out, nil
}

// blobsOf returns the distinct blobs of manifest d and of its children.
func blobsOf(manifests map[digest.Digest]*storage.GCManifest, d digest.Digest) []digest.Digest {
	m := manifests[d]
	if m == nil {
		return nil
	}
	seen := map[digest.Digest]bool{}
	var out []digest.Digest
	add := func(ds []digest.Digest) {
		for _, b := range ds {
			if !seen[b] {
				seen[b] = true
				out = append(out, b)
			}
		}
	}
	add(m.Blobs)
	for _, c := range m.Manifests {
		if cm := manifests[c]; cm != nil {
			add(cm.Blobs)
		}
	}
	return out
}

func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// platforms returns the platforms an index names, as os/arch[/variant].
func platforms(index []byte) []string {
	var idx ocispec.Index
	if json.Unmarshal(index, &idx) != nil {
		return nil
	}
	var out []string
	for _, c := range idx.Manifests {
		if c.Platform != nil {
			out = append(out, platformString(c.Platform))
		}
	}
	return out
}

func platformString(p *ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
