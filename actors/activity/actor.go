package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// Store is what the activity log needs from the store. *store.Store implements it.
type Store interface {
	PutActivity(entries []store.ActivityEntry) error
	ActivityBounds() (oldest, last uint64, err error)
	ScanActivity(before uint64, fn func(id uint64, data []byte) bool) error
	ScanActivityOldest(fn func(id uint64, data []byte) bool) error
	GetActivity(id uint64) ([]byte, error)
	DeleteActivityBelow(id uint64) error
}

// Secrets is where the secret values come from.
type Secrets interface {
	SecretsGeneration() uint64
	SecretValues() ([]string, error)
}

var (
	_ Store   = (*store.Store)(nil)
	_ Secrets = (*store.Store)(nil)
)

// Options configure the activity actor. Store is required.
type Options struct {
	Store  Store
	Logger *slog.Logger
	// Config is the activity section of the config (its defaults apply); Configure
	// changes it live.
	Config config.Activity
	// Secrets are the store's secret values, scrubbed from every record; the writer builds
	// its scrubber again when their generation changes. Nil scrubs only what a record's own
	// Scrub holds. *store.Store implements it.
	Secrets Secrets
	// Published is called with each written record's Summary (activity.recorded).
	Published func(Record)
	// Recorded is called for each record as it arrives (metrics: calls, durations).
	Recorded func(Record)
	// Written and Dropped count records written to the store and records dropped because
	// MaxQueued were waiting.
	Written, Dropped func(n int)
	// AgeCheckEvery is how often max_age is applied, also when no call comes (it reads
	// only the oldest records); default a second.
	AgeCheckEvery time.Duration
}

// Messages of the activity actor.
type (
	list struct{ q Query }
	get  struct{ id uint64 }
	// configure changes the retention and record_arguments.
	configure struct{ c config.Activity }
	// jobDone says the writer has finished the job it was given.
	jobDone struct{}
	// ageTick is the actor's own timer: apply max_age.
	ageTick struct{}
	// lingerOver: the write job that waited for company may go to the writer.
	lingerOver struct{}
	reply      struct {
		v   any
		err error
	}
)

// job is one piece of the writer's work: records to write, or a read answered to `to`.
type job struct {
	writes []Record
	read   any // list or get
	to     *actor.PID
	cfg    *config.Activity
	age    bool // apply max_age
}

type activityActor struct {
	o        Options
	sys      *actor.ActorSystem
	self     *actor.PID
	next     uint64
	cfg      config.Activity
	queue    []job
	queued   int // records in queue
	busy     bool
	jobs     chan job
	done     chan struct{}
	ticker   *time.Ticker
	stopTick chan struct{}
	// lingerTimer, while set, will send lingerOver; the head write job waits for it.
	lingerTimer *time.Timer
}

// linger is how long a write job that is alone in the queue waits for more records before
// the writer takes it. Calls in a row (an agent's loop) then share one batch, one fsync and
// one wake-up of the writer and the hub instead of paying them each, which on a 2-core
// machine slowed the next call (0.3-0.4 ms of a 1 ms call). A read, a full batch or a
// stop sends it at once; a crash can lose at most the records of this window, as it could
// lose those queued behind a sync before.
const linger = 3 * time.Millisecond

// maxBatch is the most records one write takes.
const maxBatch = 4096

// Spawn starts the activity actor, named "activity".
func Spawn(sys *actor.ActorSystem, o Options) (*Client, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AgeCheckEvery <= 0 {
		o.AgeCheckEvery = time.Second
	}
	_, last, err := o.Store.ActivityBounds()
	if err != nil {
		return nil, fmt.Errorf("activity log: %w", err)
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &activityActor{o: o, next: last + 1, cfg: o.Config}
	})
	pid, err := sys.Root.SpawnNamed(props, "activity")
	if err != nil {
		return nil, err
	}
	return &Client{sys: sys, pid: pid}, nil
}

func (a *activityActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.sys, a.self = ctx.ActorSystem(), ctx.Self()
		a.jobs, a.done = make(chan job, 1), make(chan struct{})
		w := newWriter(a.o, a.cfg)
		go w.run(a.jobs, a.sys, a.self, a.done)
		a.ticker, a.stopTick = time.NewTicker(a.o.AgeCheckEvery), make(chan struct{})
		go tick(a.ticker, a.stopTick, a.sys, a.self)
	case *actor.Stopping:
		a.stop()
	case Record:
		a.record(m)
	case list, get:
		a.enqueue(job{read: m, to: ctx.Sender()})
	case configure:
		a.cfg = m.c
		c := m.c
		a.enqueue(job{cfg: &c})
	case jobDone:
		a.busy = false
		a.kick()
	case lingerOver:
		a.lingerTimer = nil
		a.send()
	case ageTick:
		if !a.ageQueued() {
			a.enqueue(job{age: true})
		}
	}
}

// tick sends ageTick until stop is closed.
func tick(t *time.Ticker, stop <-chan struct{}, sys *actor.ActorSystem, self *actor.PID) {
	for {
		select {
		case <-t.C:
			sys.Root.Send(self, ageTick{})
		case <-stop:
			return
		}
	}
}

// ageQueued reports whether an age job already waits (a stalled writer must not collect
// one per tick).
func (a *activityActor) ageQueued() bool {
	for _, j := range a.queue {
		if j.age {
			return true
		}
	}
	return false
}

func (a *activityActor) record(r Record) {
	if a.queued >= MaxQueued {
		if a.o.Dropped != nil {
			a.o.Dropped(1)
		}
		return
	}
	r.ID = a.next
	a.next++
	if !a.cfg.ArgumentsRecorded() {
		r.Arguments = nil
	}
	if a.o.Recorded != nil {
		a.o.Recorded(r)
	}
	a.queued++
	// The queue holds only what the writer has not taken, so the newest write job grows
	// while the writer syncs the one before: that is the batching.
	if n := len(a.queue); n > 0 && a.queue[n-1].writes != nil && len(a.queue[n-1].writes) < maxBatch {
		a.queue[n-1].writes = append(a.queue[n-1].writes, r)
	} else {
		a.queue = append(a.queue, job{writes: []Record{r}})
	}
	a.kick()
}

func (a *activityActor) enqueue(j job) {
	a.queue = append(a.queue, j)
	a.kick()
}

// kick hands the writer its next job when it is idle, unless that job is a write alone in
// the queue that may still gather records (linger).
func (a *activityActor) kick() {
	if a.busy || len(a.queue) == 0 {
		return
	}
	if len(a.queue) == 1 && a.queue[0].writes != nil && len(a.queue[0].writes) < maxBatch {
		if a.lingerTimer == nil {
			sys, self := a.sys, a.self
			a.lingerTimer = time.AfterFunc(linger, func() { sys.Root.Send(self, lingerOver{}) })
		}
		return
	}
	a.send()
}

// send hands the writer the head job when it is idle.
func (a *activityActor) send() {
	if a.busy || len(a.queue) == 0 {
		return
	}
	j := a.queue[0]
	a.queue[0] = job{}
	a.queue = a.queue[1:]
	a.queued -= len(j.writes)
	a.busy = true
	a.jobs <- j // room for one: the writer is idle
}

// stop writes what is queued and waits for the writer, so every record reaches the store
// before the daemon closes it.
func (a *activityActor) stop() {
	if a.jobs == nil {
		return
	}
	a.ticker.Stop()
	close(a.stopTick)
	if a.lingerTimer != nil {
		a.lingerTimer.Stop() // the queue is written below
		a.lingerTimer = nil
	}
	for _, j := range a.queue {
		if j.read != nil {
			a.sys.Root.Send(j.to, reply{err: errors.New("the activity log is stopping")})
			continue
		}
		a.jobs <- j
	}
	a.queue = nil
	close(a.jobs)
	<-a.done
	a.jobs = nil
}

// Client is the typed API of the activity actor. A nil *Client records nothing.
type Client struct {
	sys *actor.ActorSystem
	pid *actor.PID
}

// PID is the actor's, for the daemon's ordered shutdown.
func (c *Client) PID() *actor.PID {
	if c == nil {
		return nil
	}
	return c.pid
}

// Record queues r; it never blocks. Its ID is assigned by the actor.
func (c *Client) Record(r Record) {
	if c == nil {
		return
	}
	c.sys.Root.Send(c.pid, r)
}

// Configure applies a changed activity config (retention, record_arguments).
func (c *Client) Configure(cfg config.Activity) {
	if c == nil {
		return
	}
	c.sys.Root.Send(c.pid, configure{c: cfg})
}

// List returns one page of records.
func (c *Client) List(ctx context.Context, q Query) (Page, error) {
	v, err := c.ask(ctx, list{q: q})
	if err != nil {
		return Page{}, err
	}
	p, _ := v.(Page)
	return p, nil
}

// Get returns one record, or ErrNotFound.
func (c *Client) Get(ctx context.Context, id uint64) (Record, error) {
	v, err := c.ask(ctx, get{id: id})
	if err != nil {
		return Record{}, err
	}
	r, _ := v.(Record)
	return r, nil
}

// Stop writes every queued record and stops the actor, bounded by ctx.
func (c *Client) Stop(ctx context.Context) error {
	if c == nil {
		return nil
	}
	f := c.sys.Root.PoisonFuture(c.pid)
	done := make(chan struct{})
	go func() { _ = f.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping the activity log: %w", ctx.Err())
	}
}

// ErrTimeout is the answer when the activity actor does not answer in time.
var ErrTimeout = errors.New("the activity log did not answer in time")

// ErrUnavailable is the answer when the activity actor is gone (the daemon stops).
var ErrUnavailable = errors.New("the activity log is not running")

func (c *Client) ask(ctx context.Context, msg any) (any, error) {
	if c == nil {
		return nil, ErrUnavailable
	}
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	res, err := c.sys.Root.RequestFuture(c.pid, msg, timeout).Result()
	switch {
	case errors.Is(err, actor.ErrTimeout):
		return nil, ErrTimeout
	case errors.Is(err, actor.ErrDeadLetter):
		return nil, ErrUnavailable
	case err != nil:
		return nil, err
	}
	rep, ok := res.(reply)
	if !ok {
		return nil, fmt.Errorf("activity log: unexpected reply %T", res)
	}
	return rep.v, rep.err
}
