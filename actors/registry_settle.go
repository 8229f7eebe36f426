package actors

import (
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

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
// collection of its own. The release waits releaseDelay of quiet: returning the pages holds
// the heap's lock while it runs, so it should not fall on whatever follows a burst at once
// (in one full bench run with the release at once, a status answer during B10's tear-down of
// the 10,000 servers just connected took 328 ms; with it delayed, none over 80 ms in six
// runs), and a burst that goes on meanwhile puts it off.

// releaseAfterConnects is how many connects a burst needs before it settles with a release.
const releaseAfterConnects = 10

// releaseDelay is how long nothing must begin to connect after a burst before its release.
const releaseDelay = time.Second

// releaseDue is the registry's timer of a burst's release; it is stale when a connect began
// after it was set.
type releaseDue struct{ burst uint64 }

// releaseMemory is RegistryOptions.ReleaseMemory's default: the collection runs on its own
// goroutine, which ends when it is done.
func releaseMemory() { go debug.FreeOSMemory() }

// connectBegun counts a first connect or a bulk restart toward the current burst.
func (r *registry) connectBegun() {
	r.burst++
	r.burstSeq++ // puts off a release that is due
}

// maybeSettle is called when a start or bulk-restart slot is freed: once none is connecting
// or waiting to, a burst of releaseAfterConnects or more ends with a release, releaseDelay
// later unless another connect begins first.
func (r *registry) maybeSettle(ctx actor.Context) {
	if len(r.starting) > 0 || len(r.startQueue) > 0 || len(r.restarting) > 0 || len(r.restartQueue) > 0 {
		return
	}
	n := r.burst
	r.burst = 0
	if n >= releaseAfterConnects && !r.closing {
		due := releaseDue{burst: r.burstSeq}
		sys, self := r.sys, ctx.Self()
		// A timer, not a goroutine: nothing is left running if the daemon stops first (the
		// message then goes to a stopped actor, which drops it).
		time.AfterFunc(releaseDelay, func() { sys.Root.Send(self, due) })
	}
}

// onReleaseDue releases the memory of a burst that is still over. The search index first
// gives back the spare room its lists grew while the burst's tools were added (with 10,000
// tools about a tenth of its memory), so that the release returns that too.
func (r *registry) onReleaseDue(m releaseDue) {
	if m.burst == r.burstSeq && !r.closing {
		r.index.Compact()
		r.opts.ReleaseMemory()
	}
}
