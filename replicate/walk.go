package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// walk gathers what one item's copy needs.
type walk struct {
	*planner
	item     *Item
	src, dst name.Repository
	seen     map[v1.Hash]bool // manifests walked
	blobSeen map[v1.Hash]bool
}

// tagged walks the manifest tag (or digest) names, then the referrers
// tags of every manifest it met.
func (w *walk) tagged(ctx context.Context, tag string, all []string) error {
	d, err := w.from.Get(ctx, targetRef(w.src, tag))
	if err != nil {
		return fmt.Errorf("reading %s:%s: %w", w.src, tag, err)
	}
	w.item.Digest = d.Digest
	if err := w.manifest(ctx, tag, d.Manifest, d.MediaType, d.Digest); err != nil {
		return err
	}
	digests := map[string]bool{}
	for h := range w.seen {
		digests[h.String()] = true
	}
	for _, t := range Attached(all, digests) {
		d, err := w.from.Get(ctx, w.src.Tag(t))
		if err != nil {
			return fmt.Errorf("reading %s:%s: %w", w.src, t, err)
		}
		if err := w.manifest(ctx, t, d.Manifest, d.MediaType, d.Digest); err != nil {
			return err
		}
	}
	return nil
}

// parsed is the part of a manifest or index the walk follows.
type parsed struct {
	Manifests []v1.Descriptor `json:"manifests"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
}

// manifest walks one manifest reached by ref (a tag, or its digest):
// unless the target has it, its children and blobs; in any case the
// referrers of it and of its children.
func (w *walk) manifest(ctx context.Context, ref string, raw []byte, mt types.MediaType, h v1.Hash) error {
	var m parsed
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s: %v", h, err)
	}
	if mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed {
		return fmt.Errorf("manifest %s: Docker schema 1 is not copied", h)
	}
	tagged := ref != h.String()
	if w.seen[h] && !tagged {
		return nil
	}
	w.seen[h] = true
	has, err := w.targetHasManifest(ctx, ref, h)
	if err != nil {
		return err
	}
	for _, c := range m.Manifests {
		if !w.job.wants(c) {
			continue
		}
		if err := w.child(ctx, c, has); err != nil {
			return err
		}
	}
	if !has {
		for _, b := range append(m.Layers, configOf(m)...) {
			if err := w.blob(ctx, b); err != nil {
				return err
			}
		}
		w.item.Manifests = append(w.item.Manifests, Manifest{Ref: ref, Raw: raw, Type: mt, Digest: h})
	}
	return w.referrers(ctx, h)
}

func configOf(m parsed) []v1.Descriptor {
	if m.Config == nil {
		return nil
	}
	return []v1.Descriptor{*m.Config}
}

// child walks a manifest an index lists. When the target has the index
// and the child, only the child's referrers are looked up. An index on
// the target may lack children: replication with chosen platforms leaves
// them out, and a later run for other platforms, or all, adds them.
func (w *walk) child(ctx context.Context, c v1.Descriptor, parentPresent bool) error {
	if parentPresent {
		if w.seen[c.Digest] {
			return nil
		}
		has, err := w.targetHasManifest(ctx, c.Digest.String(), c.Digest)
		if err != nil {
			return err
		}
		if has {
			w.seen[c.Digest] = true
			return w.referrers(ctx, c.Digest)
		}
	}
	d, err := w.from.Get(ctx, w.src.Digest(c.Digest.String()))
	if err != nil {
		return fmt.Errorf("reading %s@%s: %w", w.src, c.Digest, err)
	}
	return w.manifest(ctx, c.Digest.String(), d.Manifest, d.MediaType, d.Digest)
}

// referrers walks the manifests whose subject is h.
func (w *walk) referrers(ctx context.Context, h v1.Hash) error {
	idx, err := remote.Referrers(w.src.Digest(h.String()), w.srcOpts...)
	if err != nil {
		return fmt.Errorf("listing referrers of %s@%s: %w", w.src, h, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, r := range im.Manifests {
		if w.seen[r.Digest] {
			continue
		}
		d, err := w.from.Get(ctx, w.src.Digest(r.Digest.String()))
		if err != nil {
			return fmt.Errorf("reading referrer %s@%s: %w", w.src, r.Digest, err)
		}
		if err := w.manifest(ctx, r.Digest.String(), d.Manifest, d.MediaType, d.Digest); err != nil {
			return err
		}
	}
	return nil
}

// targetHasManifest reports whether ref on the target is the manifest h.
func (w *walk) targetHasManifest(ctx context.Context, ref string, h v1.Hash) (bool, error) {
	key := w.dst.String() + "@" + h.String()
	if ref == h.String() && w.present[key] {
		return true, nil
	}
	r := w.ref(ref)
	d, err := w.to.Head(ctx, r)
	if notFound(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("checking %s on the target: %w", r, err)
	}
	if d.Digest != h {
		return false, nil
	}
	w.present[key] = true
	return true, nil
}

// blob adds b to the item unless the target repository has it.
func (w *walk) blob(ctx context.Context, b v1.Descriptor) error {
	if w.blobSeen[b.Digest] {
		return nil
	}
	w.blobSeen[b.Digest] = true
	key := w.dst.String() + "@" + b.Digest.String()
	if w.present[key] {
		return nil
	}
	l, err := w.to.Layer(ctx, w.dst.Digest(b.Digest.String()))
	if err != nil {
		return err
	}
	ok, err := partial.Exists(l)
	if err != nil {
		return fmt.Errorf("checking blob %s on the target: %w", b.Digest, err)
	}
	if ok {
		w.present[key] = true
		return nil
	}
	w.item.Blobs = append(w.item.Blobs, b)
	return nil
}

// ref is ref (a tag or a digest) in the target repository.
func (w *walk) ref(ref string) name.Reference {
	return targetRef(w.dst, ref)
}

func targetRef(repo name.Repository, ref string) name.Reference {
	if _, err := v1.NewHash(ref); err == nil {
		return repo.Digest(ref)
	}
	return repo.Tag(ref)
}

// IsNotFound reports whether err is a 404 from a registry.
func IsNotFound(err error) bool { return notFound(err) }

// notFound reports whether err is a 404 from a registry.
func notFound(err error) bool {
	var t *transport.Error
	return errors.As(err, &t) && t.StatusCode == http.StatusNotFound
}
