package actors

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// goroutineID is the running goroutine's number, from its stack trace's first line.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(id)
}

// runOn schedules one run on d and returns the goroutine it ran on.
func runOn(t *testing.T, d *warmDispatcher) string {
	t.Helper()
	got := make(chan string, 1)
	d.Schedule(func() { got <- goroutineID() })
	select {
	case id := <-got:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("a scheduled run did not run")
		return ""
	}
}

// waitGoroutines polls, with a bound, until at most n goroutines run.
func waitGoroutines(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines, want <= %d", what, runtime.NumGoroutine(), n)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling a count that no event announces
	}
}

// A run after another reuses its goroutine (whose stack has grown), a run that finds none
// idle gets one of its own, and no goroutine outlives the linger or Stop.
func TestWarmDispatcher(t *testing.T) {
	base := runtime.NumGoroutine()
	d := newWarmDispatcher(300, time.Minute)
	// A run scheduled before the last one's goroutine is back in its wait gets a new one, so
	// runs are scheduled until one lands on a goroutine that ran one before.
	first := runOn(t, d)
	seen := map[string]bool{first: true}
	reused := false
	for range 1000 {
		id := runOn(t, d)
		if seen[id] {
			reused = true
			break
		}
		seen[id] = true
		runtime.Gosched()
	}
	if !reused {
		t.Errorf("1001 runs ran on %d goroutines, none reused", len(seen))
	}
	// While a run is busy, another runs at once on a goroutine of its own.
	release := make(chan struct{})
	busy := make(chan string, 1)
	d.Schedule(func() { busy <- goroutineID(); <-release })
	busyID := <-busy
	if other := runOn(t, d); other == busyID {
		t.Errorf("a run waited for the busy goroutine %s", busyID)
	}
	close(release)
	d.Stop()
	waitGoroutines(t, base, "after Stop")
	// After Stop a run still runs, and its goroutine ends with it.
	if id := runOn(t, d); seen[id] {
		t.Errorf("a run after Stop ran on %q", id)
	}
	waitGoroutines(t, base, "a run after Stop")

	// Without Stop, an idle goroutine exits after the linger.
	d = newWarmDispatcher(300, 10*time.Millisecond)
	runOn(t, d)
	waitGoroutines(t, base, "after the linger")
}
