package storage

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// applyDiff writes to ndb, in one transaction, what changed from read
// transaction from to the later to of the same file: ndb, which held
// from's records, then holds to's. Both must stay open until it returns
// (ndb's commit reads their bytes).
func applyDiff(ndb *bolt.DB, from, to *bolt.Tx) error {
	return ndb.Update(func(ntx *bolt.Tx) error {
		var names [][]byte
		to.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, name)
			return nil
		})
		from.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if to.Bucket(name) == nil {
				names = append(names, name)
			}
			return nil
		})
		for _, name := range names {
			fb, tb := from.Bucket(name), to.Bucket(name)
			switch {
			case tb == nil:
				if err := ntx.DeleteBucket(name); err != nil {
					return err
				}
			case fb == nil:
				nb, err := ntx.CreateBucket(name)
				if err != nil {
					return err
				}
				if err := copyBucket(nb, tb); err != nil {
					return err
				}
			case !sameBucket(fb, tb):
				if err := diffBucket(ntx.Bucket(name), fb, tb); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// sameBucket reports whether two transactions of a file see bucket a and
// b unchanged: the same root page (a change writes a new one, and the
// earlier transaction, still open, keeps the old one from reuse) and the
// same sequence. An inline bucket (root 0) is never the same.
func sameBucket(a, b *bolt.Bucket) bool {
	return a.Root() != 0 && a.Root() == b.Root() && a.Sequence() == b.Sequence()
}

// diffBucket writes to nb what changed from bucket from to bucket to,
// walking both in key order.
func diffBucket(nb, from, to *bolt.Bucket) error {
	if from.Sequence() != to.Sequence() {
		if err := nb.SetSequence(to.Sequence()); err != nil {
			return err
		}
	}
	fc, tc := from.Cursor(), to.Cursor()
	fk, fv := fc.First()
	tk, tv := tc.First()
	for fk != nil || tk != nil {
		c := -1 // fk only
		switch {
		case fk == nil:
			c = 1
		case tk != nil:
			c = bytes.Compare(fk, tk)
		}
		var err error
		switch {
		case c < 0:
			err = deleteEntry(nb, fk, from.Bucket(fk) != nil && fv == nil)
			fk, fv = fc.Next()
		case c > 0:
			err = putEntry(nb, tk, tv, to)
			tk, tv = tc.Next()
		default:
			fsub, tsub := fv == nil && from.Bucket(fk) != nil, tv == nil && to.Bucket(tk) != nil
			switch {
			case fsub && tsub:
				if fb, tb := from.Bucket(fk), to.Bucket(tk); !sameBucket(fb, tb) {
					err = diffBucket(nb.Bucket(tk), fb, tb)
				}
			case !fsub && !tsub:
				if !sameBytes(fv, tv) {
					err = nb.Put(tk, tv)
				}
			default:
				if err = deleteEntry(nb, fk, fsub); err == nil {
					err = putEntry(nb, tk, tv, to)
				}
			}
			fk, fv = fc.Next()
			tk, tv = tc.Next()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func deleteEntry(nb *bolt.Bucket, k []byte, sub bool) error {
	if sub {
		return nb.DeleteBucket(k)
	}
	return nb.Delete(k)
}

// putEntry writes key k of bucket to, a value v or a nested bucket, to nb.
func putEntry(nb *bolt.Bucket, k, v []byte, to *bolt.Bucket) error {
	if v == nil {
		if sub := to.Bucket(k); sub != nil {
			nsub, err := nb.CreateBucket(k)
			if err != nil {
				return err
			}
			return copyBucket(nsub, sub)
		}
	}
	if v == nil {
		v = []byte{}
	}
	return nb.Put(k, v)
}

// sameBytes is bytes.Equal, at once for two slices of one unchanged page.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return bytes.Equal(a, b)
}
