// Package replicate copies repositories between this registry and others.
//
// A copy is planned, then applied. Plan lists the source's repositories
// and tags that a Job selects and, for each tag, walks what the tagged
// manifest needs: an index's children, an image's config and layers, and
// the referrers of every manifest met (OCI 1.1 referrers, read from the
// referrers API or its `sha256-<hex>` tag fallback, and cosign's
// `sha256-<hex>.sig`, `.att` and `.sbom` tags). Each manifest and blob is
// checked on the target first (HEAD), so an Item holds only what the
// target lacks; a tag whose digest the target already has costs a HEAD.
// Apply then uploads the missing blobs, mounting them from another target
// repository when an earlier item of the run put them there, and puts the
// missing manifests children first, so no manifest arrives before what it
// references.
//
// Both sides are plain OCI registries reached with go-containerregistry:
// replication never takes a special path into a store, and what it
// pushes any registry accepts. Manifests travel as their raw bytes and
// blobs by digest, so every digest on the target is the source's.
package replicate
