package storage

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"
)

// copyChunks copies every bucket of src into dst in key order, in chunks
// of compactBatch records, each chunk from a read transaction of its own
// and committed to dst within it (dst's commit reads the chunk's bytes in
// src's map). Writes go on meanwhile, so the chunks may see src in
// different states: syncTx then makes dst exact. release runs at the end
// of each chunk, with its transaction.
func copyChunks(ctx context.Context, src, dst *bolt.DB, release func(*bolt.Tx)) error {
	var names [][]byte
	src.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, bytes.Clone(name))
			return nil
		})
	})
	for _, name := range names {
		var after []byte // the last key copied
		for done := false; !done; {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := src.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(name)
				if b == nil { // deleted meanwhile
					done = true
					return nil
				}
				defer release(tx)
				return dst.Update(func(ntx *bolt.Tx) error {
					nb, err := ntx.CreateBucketIfNotExists(name)
					if err != nil {
						return err
					}
					nb.FillPercent = compactFill // every key goes past the last
					if after == nil {
						if err := nb.SetSequence(b.Sequence()); err != nil {
							return err
						}
					}
					c := b.Cursor()
					k, v := c.First()
					if after != nil {
						if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
							k, v = c.Next()
						}
					}
					var last []byte
					for n := 0; k != nil && n < compactBatch; k, v = c.Next() {
						if err := putEntry(nb, k, v, b); err != nil {
							return err
						}
						last = k
						n++
					}
					done = k == nil
					if last != nil {
						after = bytes.Clone(last)
					}
					return nil
				})
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// syncTx makes the buckets of ntx, a write transaction, hold exactly what
// those of src hold: records, nested buckets and sequences.
func syncTx(ntx, src *bolt.Tx) error {
	var gone, names [][]byte
	ntx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if src.Bucket(name) == nil {
			gone = append(gone, bytes.Clone(name))
		}
		return nil
	})
	for _, name := range gone {
		if err := ntx.DeleteBucket(name); err != nil {
			return err
		}
	}
	src.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, name)
		return nil
	})
	for _, name := range names {
		sb := src.Bucket(name)
		nb := ntx.Bucket(name)
		if nb == nil {
			var err error
			if nb, err = ntx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := syncBucket(nb, sb); err != nil {
			return err
		}
	}
	return nil
}

// syncBucket makes bucket nb hold exactly what bucket src holds, walking
// both in key order, then writing the differences.
func syncBucket(nb, src *bolt.Bucket) error {
	if nb.Sequence() != src.Sequence() {
		if err := nb.SetSequence(src.Sequence()); err != nil {
			return err
		}
	}
	var del, put, nested [][]byte // del: keys of nb, copied; put, nested: keys of src
	nc, sc := nb.Cursor(), src.Cursor()
	nk, nv := nc.First()
	sk, sv := sc.First()
	for nk != nil || sk != nil {
		c := -1 // nk only
		switch {
		case nk == nil:
			c = 1
		case sk != nil:
			c = bytes.Compare(nk, sk)
		}
		switch {
		case c < 0:
			del = append(del, bytes.Clone(nk))
			nk, nv = nc.Next()
		case c > 0:
			put = append(put, sk)
			sk, sv = sc.Next()
		default:
			nsub, ssub := nv == nil && nb.Bucket(nk) != nil, sv == nil && src.Bucket(sk) != nil
			switch {
			case nsub && ssub:
				nested = append(nested, sk)
			case nsub != ssub:
				del = append(del, bytes.Clone(nk))
				put = append(put, sk)
			case !bytes.Equal(nv, sv):
				put = append(put, sk)
			}
			nk, nv = nc.Next()
			sk, sv = sc.Next()
		}
	}
	for _, k := range del {
		var err error
		if nb.Bucket(k) != nil {
			err = nb.DeleteBucket(k)
		} else {
			err = nb.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	for _, k := range put {
		if err := putEntry(nb, k, src.Get(k), src); err != nil {
			return err
		}
	}
	for _, k := range nested {
		if err := syncBucket(nb.Bucket(k), src.Bucket(k)); err != nil {
			return err
		}
	}
	return nil
}

// putEntry writes key k of bucket from, a value v or a nested bucket, to
// nb.
func putEntry(nb *bolt.Bucket, k, v []byte, from *bolt.Bucket) error {
	if v == nil {
		if sub := from.Bucket(k); sub != nil {
			nsub, err := nb.CreateBucket(k)
			if err != nil {
				return err
			}
			return copyBucket(nsub, sub)
		}
		v = []byte{}
	}
	return nb.Put(k, v)
}
