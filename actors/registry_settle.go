package actors

import "runtime/debug"

// Memory after a bulk connect. Connecting many servers at once (the daemon's start, an
// apply that adds many, restart_all) makes garbage in proportion to their tools: the JSON of
// every tools/list answer, its decoding, the search index's building. The Go runtime keeps
// the heap it grew to for that burst (its goal is twice the live heap) and gives it back to
// the system only as far as that goal, so the daemon held on to it for as long as it ran:
// with 100 stdio servers of 100 tools, 75 MB of anonymous memory for a live heap of 36 MB,
// unchanged 30 s later. Once the burst is over, nothing is connecting and nothing waits to,
// the registry has the runtime collect and return what is free at once (debug.FreeOSMemory,
// one collection of the live heap, a few milliseconds of CPU off the registry's goroutine).
// A connect or two (one server added, one restarted) makes too little garbage to be worth a
// collection of its own.

// releaseAfterConnects is how many connects a burst needs before it settles with a release.
const releaseAfterConnects = 10

// releaseMemory is RegistryOptions.ReleaseMemory's default: the collection runs on its own
// goroutine, which ends when it is done.
func releaseMemory() { go debug.FreeOSMemory() }

// connectBegun counts a first connect or a bulk restart toward the current burst.
func (r *registry) connectBegun() { r.burst++ }

// maybeSettle is called when a start or bulk-restart slot is freed: once none is connecting
// or waiting to, a burst of releaseAfterConnects or more ends with a release.
func (r *registry) maybeSettle() {
	if len(r.starting) > 0 || len(r.startQueue) > 0 || len(r.restarting) > 0 || len(r.restartQueue) > 0 {
		return
	}
	n := r.burst
	r.burst = 0
	if n >= releaseAfterConnects && !r.closing {
		r.opts.ReleaseMemory()
	}
}
