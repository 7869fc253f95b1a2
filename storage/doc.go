// Package storage owns everything the registry keeps: blob bytes behind a
// Driver (the filesystem today, an object store next) and metadata in one
// bbolt file. It is the only package that touches disk.
//
// Invariants:
//   - Blobs are content-addressed and stored once under
//     blobs/<algorithm>/<xx>/<hex>, sha256 and sha512 alike.
//   - A blob appears under its digest only after its bytes are complete and
//     verified: uploads are written under uploads/<id>, hashed while
//     streaming, and moved into place at commit. A crash leaves at most an
//     unreferenced file for garbage collection.
//   - A blob's bytes and name are durable before the commit recording it
//     returns: its file is synced (after its move, for a blob pushed in
//     one request, so that on a journaling filesystem that sync carries
//     the rename), and the directories the move wrote to are synced by the
//     commit's batch, each once, before its transaction
//     (committer.updateAfterSync).
//   - A repository reads only the blobs linked to it (pushed there, or
//     mounted from a repository the caller may read). A digest alone grants
//     nothing.
//   - Every commit is durable once answered: its writes to metadata.db are
//     logged in metadata.wal and synced (wal*.go).
//   - Compaction (compact.go) replaces metadata.db with a copy in key order
//     while the registry serves: reads go on against the file they began
//     on (metahandle.go), writes wait only for the final walk of both
//     files, and a crash leaves either file whole. No read transaction is
//     held long, or while waiting for writers: a commit that grows the
//     file remaps it, which waits for every read transaction.
//   - Manifests, tags, links, referrers, upload sessions, push and pull
//     times and the pull-through cache's tag check times live in bbolt, changed in one transaction per API call;
//     concurrent calls share transactions (see committer) so they share
//     disk syncs.
//   - The metadata layout has a version (upgrade.go). Open converts a
//     format 1 meta.db into metadata.db, in bounded transactions, and
//     renames it into place: a crash during the conversion leaves the old
//     file, which the next Open converts. meta.db then holds a text that
//     bbolt refuses, so no release that knows only format 1 opens the
//     store (metafile.go).
//   - A manifest is stored only if every blob and child manifest it
//     references is in its repository when the transaction commits.
//   - GetManifestShared answers from a cache of recent reads
//     (hotmanifests.go) that every write transaction retires before its
//     caller returns: no read that starts after a write returned sees
//     what the write replaced.
//   - Upload sessions persist their offset and hash state, so chunked
//     uploads survive a restart. A session belongs to the Uploader that
//     opened it; open sessions are counted per client and in total, and
//     end after storage.upload_idle_expiry without a write.
//   - No upload in progress is ever collected: an upload file being
//     written without a session record (a blob pushed in one request) is
//     known to the orphan scan while this process writes it.
//   - On S3 a verified upload stays where its bytes are (Sealer); one
//     still in several segments is recorded so (bucket "pieced") and is
//     never redirected to, until ComposeBlobs has made it one object.
//   - Blob bytes are streamed through one fixed-size buffer per upload;
//     memory does not grow with blob size.
//   - On a full disk, metadata writes still find space, so GC can commit
//     the deletions that free it: the metadata file keeps a reserve
//     allocated past its data (see reserve.go). A write that fails for
//     lack of space returns ErrStorageFull.
//   - The audit record (audit.go) keeps the last AuditMax entries, pruned
//     in the transaction that appends; an AuditWriter writes them in
//     batches behind the requests, so a crash may lose the last second.
//     The usage history (usage.go) keeps one total per day for two years.
//
// Errors are the sentinels in errors.go, wrapped with context; callers test
// them with errors.Is.
package storage
