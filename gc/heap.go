package gc

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
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
	room  int // the GOGC LeaveHeapRoom set last
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

// heapRoom is how far the server lets its Go heap grow between
// collections at the least. Its live heap is small (2-3 MB while it
// serves pulls and pushes), and Go's default pacing collects once the
// heap has doubled or reached 4 MB: some 60 times a second under a load
// of manifest pulls, which then cost 6-8% more CPU each. With heapRoom
// the heap peaks at most that much above the live heap; once the live
// heap is larger than heapRoom, the default doubling applies unchanged.
const heapRoom = 8 << 20

// defaultHeapMinimum is the Go runtime's smallest heap goal at GOGC=100;
// it scales with GOGC.
const defaultHeapMinimum = 4 << 20

var heapRoomOnce sync.Once

// LeaveHeapRoom sets GOGC after each of Go's collections so the next
// lets the heap grow by heapRoom, for the life of the process. GOGC or
// GOMEMLIMIT in the environment is the operator's choice and leaves the
// runtime's pacing alone, as does a pass's tight heap while it runs.
func LeaveHeapRoom() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	heapRoomOnce.Do(func() {
		samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var arm func()
		arm = func() {
			// A sentinel with a pointer is not batched with other tiny
			// objects, so its cleanup runs after the first collection that
			// finds it unreachable.
			runtime.AddCleanup(&struct{ p *byte }{}, func(struct{}) {
				metrics.Read(samples)
				if samples[0].Value.Kind() != metrics.KindUint64 {
					return // a runtime without the metric: Go's own pacing
				}
				setHeapRoom(samples[0].Value.Uint64())
				arm()
			}, struct{}{})
		}
		arm()
	})
}

// setHeapRoom sets GOGC for a live heap of live bytes, unless a pass's
// tight heap is in force.
func setHeapRoom(live uint64) {
	heapTarget.Lock()
	defer heapTarget.Unlock()
	if heapTarget.users == 0 {
		if p := roomPercent(live); p != heapTarget.room {
			debug.SetGCPercent(p)
			heapTarget.room = p
		}
	}
}

// roomPercent is the GOGC whose heap goal, for a live heap of live bytes,
// is as near live+heapRoom as it can be without passing it, and never
// below the default 100. The goal is the larger of the live heap grown by
// GOGC percent and defaultHeapMinimum scaled by it.
func roomPercent(live uint64) int {
	if live == 0 || live >= heapRoom {
		return 100
	}
	goal := live + heapRoom
	p := min((goal-live)*100/live, goal*100/defaultHeapMinimum)
	return int(max(p, 100))
}
