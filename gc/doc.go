// Package gc is nora's online garbage collector: it finds what nothing
// references any more and deletes it while the registry keeps serving.
//
// A pass is a Plan, computed from short read transactions, then an Apply
// that deletes each planned item only if it still qualifies when re-checked
// inside the store's write transaction. A push that lands between the two
// wins: its manifest keeps its blobs, its upload keeps its link. `registry
// gc --dry-run` prints the Plan; a real run applies the same Plan.
//
// What a pass collects, each protected by the grace period (anything
// pushed, uploaded, linked, pulled or checked by a client within it stays):
//   - with DeleteUntagged, manifests no tag, index or kept subject keeps;
//   - with DeleteOrphanReferrers, referrers whose subject is gone;
//   - blob links of a repository that none of its manifests reference
//     (a blob pushed without a manifest stays linked for the grace period);
//   - blobs no repository links;
//   - upload sessions started longer than UploadMaxAge ago;
//   - files under blobs/ and uploads/ that metadata does not know (crash
//     leftovers), once seen at the same size for longer than the grace.
//
// Invariant (DESIGN.md): a blob is deleted only if, inside the same write
// transaction, no repository links it and it is older than the grace
// period. A manifest PUT needs its blobs linked inside its own write
// transaction, so of the two, whichever commits second fails or skips.
package gc
