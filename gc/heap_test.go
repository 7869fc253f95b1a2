package gc

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestRoomPercent(t *testing.T) {
	for _, live := range []uint64{1, 100 << 10, 1 << 20, 2 << 20, 3 << 20, 10 << 20, heapRoom - 1, heapRoom, 64 << 20, 1 << 30} {
		p := roomPercent(live)
		// The goal the runtime derives from p, as its pacer computes it.
		goal := max(live+live*uint64(p)/100, defaultHeapMinimum*uint64(p)/100)
		want := live + max(live, heapRoom)
		if p < 100 || goal > want || (p > 100 && want-goal > want/50) {
			t.Errorf("live %d: GOGC %d gives a goal of %d, want %d at most and within 2%%", live, p, goal, want)
		}
	}
	if p := roomPercent(0); p != 100 {
		t.Errorf("no live heap: GOGC %d, want 100", p)
	}
}

// TestLeaveHeapRoom: after a collection the server's GOGC leaves heapRoom
// of growth over its small live heap; a pass's tight heap overrides it
// while it runs and gives it back after.
func TestLeaveHeapRoom(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	LeaveHeapRoom()
	gogc := func() int64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return int64(s[0].Value.Uint64())
	}
	wait := func(ok func(int64) bool, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			runtime.GC()
			if p := gogc(); ok(p) {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("GOGC %d, want %s", p, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(func(p int64) bool { return p > 100 }, "above 100")
	// The runtime's own goal, not roomPercent's model of it: live +
	// heapRoom, give or take what stacks and globals add to its scan.
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	if live, goal := s[0].Value.Uint64(), s[1].Value.Uint64(); goal < live+heapRoom*3/4 || goal > live+heapRoom+1<<20 {
		t.Errorf("live heap %d: goal %d, want about %d", live, goal, live+heapRoom)
	}
	restore := tightHeap()
	if p := gogc(); p != passGCPercent {
		t.Fatalf("pass running: GOGC %d, want %d", p, passGCPercent)
	}
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if p := gogc(); p != passGCPercent {
		t.Fatalf("pass running, after collections: GOGC %d, want %d", p, passGCPercent)
	}
	restore()
	wait(func(p int64) bool { return p > 100 }, "above 100 once the pass is done")
}
