package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The audit record: who pushed, deleted, logged in, was granted a token
// or was refused, newest last. Entries are keyed by a sequence, so the
// oldest are the first keys, and the record is kept to AuditMax entries
// by deleting from the front in the transaction that appends.
//
//	audit   sequence (8 bytes, big-endian) → JSON AuditEntry
var bucketAudit = []byte("audit")

// AuditMax is how many entries the audit record keeps.
const AuditMax = 100_000

// AuditKind says what an AuditEntry records.
type AuditKind string

// The kinds of audit entries.
const (
	AuditPush   AuditKind = "push"   // a manifest PUT
	AuditDelete AuditKind = "delete" // a manifest, tag or blob DELETE
	AuditLogin  AuditKind = "login"  // a dashboard login
	AuditToken  AuditKind = "token"  // a token granted by /auth/token
	AuditFailed AuditKind = "failed" // credentials refused (401)
	AuditDenied AuditKind = "denied" // an identity refused an action (403)
)

// AuditEntry is one thing that happened. It never holds a secret: no
// password, token, or user name that is not a known identity's.
type AuditEntry struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind AuditKind `json:"kind"`
	// Identity is the user or robot name or OIDC subject, "" for an
	// anonymous or unknown caller; IdentityKind says which.
	Identity     string `json:"identity,omitempty"`
	IdentityKind string `json:"identityKind,omitempty"`
	Repository   string `json:"repository,omitempty"`
	// Reference is a tag or digest; Digest the manifest's digest when known.
	Reference string `json:"reference,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Remote    string `json:"remote,omitempty"`
	// Detail says more: the scopes granted, the action refused, the reason.
	Detail string `json:"detail,omitempty"`
}

// AppendAudit adds entries, in order, and deletes the oldest beyond
// AuditMax in the same transaction.
func (s *Store) AppendAudit(ctx context.Context, entries []AuditEntry) error {
	return s.appendAudit(entries, AuditMax)
}

func (s *Store) appendAudit(entries []AuditEntry, max uint64) error {
	if len(entries) == 0 {
		return nil
	}
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Seq, err = b.NextSequence(); err != nil {
				return err
			}
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(e.Seq), v); err != nil {
				return err
			}
		}
		if b.Sequence() <= max {
			return nil
		}
		keep := b.Sequence() - max // delete every seq up to keep
		c := b.Cursor()
		for k, _ := c.First(); k != nil && seqOf(k) <= keep; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// AuditQuery selects entries of the audit record.
type AuditQuery struct {
	// Before, if not 0, starts below this sequence: the Next of the
	// previous page.
	Before uint64
	// Limit is the most entries returned.
	Limit int
	// Match, if not nil, keeps only the entries it accepts.
	Match func(*AuditEntry) bool
	// MaxScan, if not 0, bounds how many entries one call reads: a
	// filter that matches little then returns a short page, with Next,
	// rather than reading the whole record.
	MaxScan int
}

// AuditPage is one page of the audit record, newest first. Next is the
// Before of the following page, 0 at the end.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    uint64       `json:"next,omitempty"`
}

// ListAudit returns entries matching q, newest first. An empty record is
// an empty page, not an error.
func (s *Store) ListAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	var p AuditPage
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.Last()
		if q.Before != 0 {
			if k, v = c.Seek(seqKey(q.Before)); k == nil {
				k, v = c.Last()
			}
		}
		scanned, last := 0, uint64(0) // last: the oldest entry read
		for ; k != nil; k, v = c.Prev() {
			if q.Before != 0 && seqOf(k) >= q.Before {
				continue
			}
			if len(p.Entries) == q.Limit || (q.MaxScan > 0 && scanned == q.MaxScan) {
				p.Next = last
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("storage: audit entry %d: %w", seqOf(k), err)
			}
			scanned, last = scanned+1, seqOf(k)
			if q.Match == nil || q.Match(&e) {
				p.Entries = append(p.Entries, e)
			}
		}
		return nil
	})
	return p, err
}
