package gc

import (
	"runtime/debug"
	"sync"
)

// passGCPercent is the GOGC a pass that runs flat out (no pace) runs
// with. A plan of hundreds of thousands of items would otherwise let the
// heap grow to twice its live size before the runtime collects; such a
// pass trades some CPU for that memory. A paced pass in the server leaves
// GOGC alone, as requests would pay for the extra collections.
const passGCPercent = 25

var heapTarget struct {
	sync.Mutex
	users int // passes planning or applying
	old   int // the GOGC before the first of them
}

// tightHeap lowers GOGC to passGCPercent, unless it is lower already or
// off, until the returned function is called. Passes may overlap: the
// last to finish restores the setting.
func tightHeap() (restore func()) {
	heapTarget.Lock()
	defer heapTarget.Unlock()
	if heapTarget.users == 0 {
		heapTarget.old = debug.SetGCPercent(passGCPercent)
		if heapTarget.old >= 0 && heapTarget.old < passGCPercent {
			debug.SetGCPercent(heapTarget.old)
		}
	}
	heapTarget.users++
	return func() {
		heapTarget.Lock()
		defer heapTarget.Unlock()
		if heapTarget.users--; heapTarget.users == 0 {
			debug.SetGCPercent(heapTarget.old)
		}
	}
}
