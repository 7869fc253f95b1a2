package storage

import (
	"reflect"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// writeAtFunc is the type of bbolt's one path for writing its file.
type writeAtFunc = func(b []byte, off int64) (int, error)

// hookWrites makes db report each write to its file to capture, once the
// write is made. bbolt has no hook for this: it makes every write through
// the function in its unexported field ops.writeAt, which this wraps. It
// reports false and changes nothing if that field is not as expected (a
// bbolt version that moved it): the store then runs without the journal,
// with bbolt's own syncs. TestJournalHooks pins it to the bbolt in go.mod.
// It must run before db's first write transaction.
func hookWrites(db *bolt.DB, capture func(b []byte, off int64)) bool {
	ops := reflect.ValueOf(db).Elem().FieldByName("ops")
	if !ops.IsValid() || ops.Kind() != reflect.Struct {
		return false
	}
	f := ops.FieldByName("writeAt")
	if !f.IsValid() || f.Type() != reflect.TypeFor[writeAtFunc]() {
		return false
	}
	p := (*writeAtFunc)(unsafe.Pointer(f.UnsafeAddr()))
	write := *p
	if write == nil {
		return false
	}
	*p = func(b []byte, off int64) (int, error) {
		n, err := write(b, off)
		if err == nil {
			capture(b, off)
		}
		return n, err
	}
	return true
}
