package storage

import "encoding/binary"

// Layout of a bbolt page, as bbolt writes it in the machine's byte order:
// a 16-byte header (id, flags, count, overflow), then for a branch or leaf
// page count 16-byte elements whose pos field is the offset, from the
// element, of its key (and, in a leaf, the value after it), and for a
// free list page count page ids (with count 0xFFFF, the real count first).
const (
	pageHeader       = 16
	pageElement      = 16
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
)

// pageUsed returns how many of the first bytes of b, a write of one bbolt
// page and its overflow, bbolt reads back: the header, elements, keys and
// values of a branch or leaf page, the header and ids of a free list page.
// bbolt never reads the rest of a page (it writes zeros there), so the
// journal logs only what pageUsed counts: a record is about half the size,
// and a commit's sync writes that much less. For any write it cannot read
// as a whole page, it returns len(b).
func pageUsed(b []byte, pageSize int) int {
	if len(b) < pageHeader || pageSize <= 0 || len(b)%pageSize != 0 {
		return len(b)
	}
	flags := binary.NativeEndian.Uint16(b[8:])
	count := int(binary.NativeEndian.Uint16(b[10:]))
	if overflow := int(binary.NativeEndian.Uint32(b[12:])); (overflow+1)*pageSize != len(b) {
		return len(b)
	}
	used := pageHeader
	switch flags {
	case branchPageFlag, leafPageFlag:
		used += count * pageElement
		if used > len(b) {
			return len(b)
		}
		for i := range count {
			at := pageHeader + i*pageElement
			e := b[at : at+pageElement]
			// In 64 bits, so that no sum of 32-bit fields wraps on a
			// 32-bit machine.
			end := uint64(at)
			if flags == leafPageFlag {
				end += uint64(binary.NativeEndian.Uint32(e[4:])) + uint64(binary.NativeEndian.Uint32(e[8:])) + uint64(binary.NativeEndian.Uint32(e[12:]))
			} else {
				end += uint64(binary.NativeEndian.Uint32(e)) + uint64(binary.NativeEndian.Uint32(e[4:]))
			}
			if end > uint64(len(b)) {
				return len(b)
			}
			used = max(used, int(end))
		}
	case freelistPageFlag:
		n := count
		if count == 0xFFFF {
			if len(b) < pageHeader+8 {
				return len(b)
			}
			c := binary.NativeEndian.Uint64(b[pageHeader:])
			if c > uint64(len(b)/8) {
				return len(b)
			}
			n = int(c) + 1
		}
		used += n * 8
	default:
		return len(b)
	}
	return min(used, len(b))
}
