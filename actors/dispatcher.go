package actors

import (
	"sync"
	"time"
)

// warmDispatcher is a protoactor Dispatcher for one busy actor (the registry): it runs the
// actor's mailbox on a goroutine that waits up to linger for the mailbox's next run before
// it exits. protoactor's default dispatcher starts a goroutine for every run, and a new
// goroutine starts with a small stack, which the registry's Receive and a tool call's path
// through it grew again on every message: runtime.newstack was 6.8% of the CPU of
// BenchmarkCallTool. A run that finds no idle goroutine starts one, as the default does,
// so a run never waits for another.
//
// Stop makes idle goroutines exit at once and later runs end theirs when done, so that none
// outlives the actor; the registry stops its dispatcher when it stops.
type warmDispatcher struct {
	throughput int
	linger     time.Duration
	work       chan func()
	done       chan struct{}
	stop       sync.Once
}

// registryThroughput is protoactor's default: messages a run processes before it yields.
const registryThroughput = 300

// registryLinger is how long the registry's goroutine waits for more work: far longer than
// the gap between the requests of any load, short enough that an idle daemon holds none.
const registryLinger = time.Second

func newWarmDispatcher(throughput int, linger time.Duration) *warmDispatcher {
	return &warmDispatcher{throughput: throughput, linger: linger, work: make(chan func()), done: make(chan struct{})}
}

// Schedule runs fn on an idle goroutine of d if one is waiting, otherwise on a new one.
func (d *warmDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go d.run(fn)
	}
}

// Throughput is how many messages a run processes before it yields.
func (d *warmDispatcher) Throughput() int { return d.throughput }

// Stop ends d's goroutines: idle ones now, busy ones when their run is over.
func (d *warmDispatcher) Stop() { d.stop.Do(func() { close(d.done) }) }

func (d *warmDispatcher) run(fn func()) {
	t := time.NewTimer(d.linger)
	defer t.Stop()
	for {
		fn()
		select {
		case <-d.done:
			return
		default:
		}
		t.Reset(d.linger)
		select {
		case fn = <-d.work:
		case <-t.C:
			return
		case <-d.done:
			return
		}
	}
}
