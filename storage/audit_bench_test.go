package storage

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkListAuditScan measures a page whose filter matches nothing:
// the whole record (AuditMax entries) is read, or MaxScan entries as the
// activity page reads.
func BenchmarkListAuditScan(b *testing.B) {
	s, err := Open(context.Background(), Config{Driver: "filesystem", Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	es := make([]AuditEntry, 0, 10_000)
	for i := range AuditMax {
		es = append(es, AuditEntry{Kind: AuditPush, Identity: "ci-bot", IdentityKind: "robot", Repository: fmt.Sprintf("team-%d/app", i%100),
			Reference: "v1", Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Remote: "10.0.0.1:41234"})
		if len(es) == cap(es) {
			if err := s.AppendAudit(context.Background(), es); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	for _, scan := range []int{0, 10_000} {
		b.Run(fmt.Sprintf("maxScan=%d", scan), func(b *testing.B) {
			for b.Loop() {
				p, err := s.ListAudit(context.Background(), AuditQuery{Limit: 50, MaxScan: scan, Match: func(e *AuditEntry) bool { return e.Repository == "none" }})
				if err != nil || len(p.Entries) != 0 {
					b.Fatal(p, err)
				}
			}
		})
	}
}
