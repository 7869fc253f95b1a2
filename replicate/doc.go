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
//
// Start runs the same engine continuously while the registry serves
// (see Config). A push target's worker follows the store's event log
// after its own cursor: it coalesces a batch, copies the tags and
// digests it names as the source has them when the copy runs (PlanRefs)
// and deletes deleted ones, and moves the cursor only once the whole
// batch is delivered, so delivery is at least once and redelivery costs
// HEADs. A pull source's poller plans and applies a whole copy every
// interval. Both reach this registry through its own API served in
// process (Local), and every request to a remote goes through its rate
// limiter and waits out a Retry-After it sent; failures are retried
// with backoff, inside the remote's daily window.
package replicate
