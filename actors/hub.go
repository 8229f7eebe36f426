package actors

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/r3labs/sse/v2"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// Hub defaults (see HubOptions).
const (
	// DefaultKeepAlive leaves a margin under the 15 s that API.md promises.
	DefaultKeepAlive     = 10 * time.Second
	DefaultReplayLimit   = 1000
	DefaultReplayTimeout = 30 * time.Second
)

// HubOptions configure the hub actor. The zero value works: no store (ids start at 1 on
// every start), no logging, a keepalive every DefaultKeepAlive, DefaultReplayLimit events
// kept for replay and DefaultReplayTimeout to send them. How many events may wait for one
// subscriber is the buffer of its stream (EventStreams; http.Options.EventsBuffer).
type HubOptions struct {
	// Store keeps the recent event log so that ids keep increasing across restarts and
	// replay works after one.
	Store  *store.Store
	Logger *slog.Logger
	// KeepAlive is the interval of ": keepalive" comments to every subscriber.
	KeepAlive time.Duration
	// ReplayLimit is how many of the newest events a reconnecting client can get back.
	ReplayLimit int
	// ReplayTimeout is how long a new subscriber may take to read its replay and become
	// live before it is dropped (checked at each keepalive).
	ReplayTimeout time.Duration
}

// HubStats are the hub's counters, for diagnostics.
type HubStats struct {
	// Subscribers is the number of /events streams now open.
	Subscribers int `json:"subscribers"`
	// Dropped counts subscribers dropped since start because they did not read.
	Dropped uint64 `json:"dropped"`
	// DroppedEvents counts event deliveries refused because a subscriber's buffer was full
	// (the subscriber is dropped on the first one; its client gets the rest on reconnect).
	DroppedEvents uint64 `json:"dropped_events"`
	// Published counts the events published since start.
	Published uint64 `json:"published"`
	// LastID is the id of the newest event.
	LastID uint64 `json:"last_id"`
}

// Messages of the hub.
type (
	subscribe struct {
		ID string
		// After is the client's Last-Event-ID; Replay says whether it sent one.
		After  uint64
		Replay bool
		// Drop ends the subscription (from the hub when the client stalls).
		Drop context.CancelFunc
		// Out holds the subscriber's stream, under ID.
		Out EventStreams
	}
	// subscribeReply carries pointers (shared immutable events): the hub and /events
	// always run in one process, unlike the registry's plain-data messages.
	subscribeReply struct {
		// missed are the events to replay, oldest first (shared, never modified).
		missed []*sse.Event
	}
	subscriberReady struct{ ID string }
	unsubscribed    struct{ ID string }
	getHubStats     struct{}
	keepaliveTick   struct{}
)

// keepaliveEvent is sent as ": keepalive"; it has a Comment, so r3labs does not take it
// for the empty event that closes a stream.
var keepaliveEvent = &sse.Event{Comment: []byte("keepalive")}

type hubSub struct {
	drop context.CancelFunc
	out  EventStreams
	live bool
	// from is the newest id the client has or gets through its replay; catch-up at ready
	// starts after it.
	from uint64
	// since is when it subscribed, for ReplayTimeout.
	since time.Time
}

type ringEntry struct {
	id uint64
	ev *sse.Event
}

// hub is the actor that fans domain events (Event, from the registry) out to the /events
// subscribers, through the EventStreams each subscribes with (http/events_conn.go: the
// subscriber's own connection, taken off net/http; or an r3labs/sse/v2 stream of
// http/events.go), and keeps the recent log for Last-Event-ID. It owns no HTTP: it only
// queues events on those streams.
//
// # Why one stream per subscriber
//
// An r3labs Stream has one goroutine that does a blocking send into each of its
// subscribers' channels, so one subscriber that stops reading stalls every other
// subscriber of that stream, and then Publish blocks (LIBRARIES.md section 3). The hub
// therefore gives every subscriber a stream of its own (a hijacked connection is its own
// EventStreams; an r3labs subscriber gets a Stream with id = subscriber id) and publishes
// to each with TryPublish, which never blocks: false means that subscriber's buffer
// (http.Options.EventsBuffer events, plus, for r3labs, its 64 in the subscriber channel,
// plus the TCP buffers) is full, and the hub drops it by cancelling its context. The
// serving side turns that cancellation into a closed connection (hijacked) or a past write
// deadline (r3labs), so a write blocked on the stalled client returns and no goroutine of
// the subscription outlives it. The hub never removes a stream itself, because removing an
// r3labs stream whose subscriber is still registered leaks r3labs' close goroutine
// (LIBRARIES.md gotcha 6).
//
// # Ids and replay
//
// Every event gets the next id (the store's LastEventID survives restarts) and is
// appended to the store's event log (synced, in batches, by a writer goroutine) and to an in-memory ring of the newest
// ReplayLimit events, loaded from the store at start. Replay is served from the ring, so
// Receive does no read I/O; the subscribe reply hands the missed events to the handler
// (Subscription.Missed), which writes them itself (in r3labs' layout) before the live
// events, so a replay of ReplayLimit events needs no stream buffer that large. A
// subscriber is "pending" from Subscribe until its replay is written and its stream takes
// events (HubClient.SubscriberReady -> subscriberReady: from the handler of a hijacked
// connection, or r3labs' OnSubscribe); the events published meanwhile are
// caught up from the ring at that point, so none is lost or sent twice. A subscriber that
// stays pending longer than ReplayTimeout (a client that does not read its replay) is
// dropped like a stalled one.
//
// # Messages
//
//	Event            publish (from the registry)
//	subscribe        -> subscribeReply (HubClient.Subscribe)
//	subscriberReady  HubClient.SubscriberReady, once the replay is out: catch up, then live
//	unsubscribed     from Subscription.End when the stream has ended
//	getHubStats      -> HubStats (HubClient.Stats)
//	keepaliveTick    from the hub's own ticker: ": keepalive" to every live subscriber
//
// It owns the subscribers, the replay ring and the counters.
type hub struct {
	opts   HubOptions
	log    *slog.Logger
	lastID uint64
	// ring holds the newest events, ascending; up to 2*ReplayLimit are kept so that
	// trimming is one copy per ReplayLimit events, and only the newest ReplayLimit are used.
	ring  []ringEntry
	subs  map[string]*hubSub
	stats HubStats
	stop  chan struct{}
	// persist feeds the event writer goroutine, which records events in the store in synced
	// batches, off the hub's mailbox; persisted is closed when it has written the last one.
	persist   chan store.Event
	persisted chan struct{}
}

// persistBacklog bounds the events waiting for the disk; a full backlog makes the hub wait
// rather than lose events.
const persistBacklog = 4096

// persistBatch is the most events one synced write takes.
const persistBatch = 256

// writeEvents records events in order, draining whatever has queued up into one synced
// batch (group commit), until events is closed.
func writeEvents(st *store.Store, events <-chan store.Event, done chan<- struct{}, log *slog.Logger) {
	defer close(done)
	batch := make([]store.Event, 0, persistBatch)
	for e := range events {
		batch = append(batch[:0], e)
	drain:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		if err := st.AppendEvents(batch); err != nil {
			log.Error("recording events", "from", batch[0].ID, "to", batch[len(batch)-1].ID, "err", err)
		}
	}
}

// NewHubProps returns the props of the hub actor.
func NewHubProps(opts HubOptions) *actor.Props {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.ReplayLimit <= 0 {
		opts.ReplayLimit = DefaultReplayLimit
	}
	if opts.ReplayTimeout <= 0 {
		opts.ReplayTimeout = DefaultReplayTimeout
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &hub{opts: opts, log: opts.Logger, subs: map[string]*hubSub{}}
	})
}

func (h *hub) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h.start(ctx)
	case *actor.Stopping, *actor.Restarting:
		h.close()
	case Event:
		h.publish(m)
	case subscribe:
		h.subscribe(ctx, m)
	case subscriberReady:
		h.ready(m.ID)
	case unsubscribed:
		delete(h.subs, m.ID)
	case keepaliveTick:
		h.keepalive()
	case getHubStats:
		st := h.stats
		st.Subscribers = len(h.subs)
		st.LastID = h.lastID
		ctx.Respond(st)
	}
}

// start loads the last id and the replay ring, and starts the event writer and the
// keepalive ticker.
func (h *hub) start(ctx actor.Context) {
	if st := h.opts.Store; st != nil {
		id, err := st.LastEventID()
		if err != nil {
			h.log.Error("reading last event id", "err", err)
		}
		// Events still queued for the disk when a previous daemon was killed had already
		// been sent with their ids: after an unclean stop, skip past every id that could
		// have been handed out, so none is reused (gaps are harmless to clients).
		h.lastID = id
		if clean, err := st.EventsClean(); err == nil && !clean && id > 0 {
			h.lastID = id + persistBacklog + persistBatch
		}
		if err := st.SetEventsClean(false); err != nil {
			h.log.Error("marking the event log in use", "err", err)
		}
		if id > 0 {
			evs, err := st.EventsAfter(id-min(id, uint64(h.opts.ReplayLimit)), h.opts.ReplayLimit)
			if err != nil {
				h.log.Error("loading the event log", "err", err)
			}
			for _, e := range evs {
				h.remember(e.ID, newWireEvent(e.ID, e.Name, e.Data))
			}
		}
	}
	if st := h.opts.Store; st != nil {
		h.persist, h.persisted = make(chan store.Event, persistBacklog), make(chan struct{})
		go writeEvents(st, h.persist, h.persisted, h.log)
	}
	sys, self := ctx.ActorSystem(), ctx.Self()
	// A plain ticker rather than protoactor's scheduler, whose timer reads its state
	// without synchronisation (a -race report).
	stop := make(chan struct{})
	h.stop = stop
	every := h.opts.KeepAlive
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sys.Root.Send(self, keepaliveTick{})
			case <-stop:
				return
			}
		}
	}()
}

// close ends every subscription (their handlers remove their own streams) and the
// ticker. On a restart the new instance starts with no subscribers; the clients reconnect
// with Last-Event-ID.
func (h *hub) close() {
	if h.stop != nil {
		close(h.stop)
		h.stop = nil
	}
	if h.persist != nil {
		// Every event published so far reaches the disk before the hub is gone.
		close(h.persist)
		<-h.persisted
		h.persist = nil
		if err := h.opts.Store.SetEventsClean(true); err != nil {
			h.log.Error("marking the event log clean", "err", err)
		}
	}
	for id, s := range h.subs {
		s.drop()
		delete(h.subs, id)
	}
}

// newWireEvent builds the r3labs event for one domain event. Data is never empty: an
// event with empty Data and Comment makes r3labs close the stream.
func newWireEvent(id uint64, name string, data []byte) *sse.Event {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	return &sse.Event{ID: strconv.AppendUint(nil, id, 10), Event: []byte(name), Data: data}
}

func (h *hub) publish(m Event) {
	data, err := m.JSON()
	if err != nil {
		h.log.Error("encoding event", "event", m.Name, "err", err)
		return
	}
	h.lastID++
	id := h.lastID
	ev := newWireEvent(id, m.Name, data)
	if h.persist != nil {
		h.persist <- store.Event{ID: id, Name: m.Name, Data: ev.Data, Time: time.Now().UTC()}
	}
	h.remember(id, ev)
	h.stats.Published++
	for sid, s := range h.subs {
		if s.live && !h.deliver(sid, s, ev) {
			h.stats.DroppedEvents++
		}
	}
}

// remember appends an event to the replay ring.
func (h *hub) remember(id uint64, ev *sse.Event) {
	h.ring = append(h.ring, ringEntry{id: id, ev: ev})
	if limit := h.opts.ReplayLimit; len(h.ring) >= 2*limit {
		n := copy(h.ring, h.ring[len(h.ring)-limit:])
		clear(h.ring[n:]) // let the dropped events be collected
		h.ring = h.ring[:n]
	}
}

// after returns the ring's events with ids greater than id, oldest first; an id older
// than the ring gets everything it holds.
func (h *hub) after(id uint64) []*sse.Event {
	win := h.ring[max(0, len(h.ring)-h.opts.ReplayLimit):]
	i := sort.Search(len(win), func(i int) bool { return win[i].id > id })
	out := make([]*sse.Event, 0, len(win)-i)
	for _, e := range win[i:] {
		out = append(out, e.ev)
	}
	return out
}

func (h *hub) subscribe(ctx actor.Context, m subscribe) {
	if _, dup := h.subs[m.ID]; dup {
		ctx.Respond(reply{err: Errorf(CodeConflict, "subscriber %q exists", m.ID)})
		return
	}
	var missed []*sse.Event
	if m.Replay {
		missed = h.after(m.After)
	}
	h.subs[m.ID] = &hubSub{drop: m.Drop, out: m.Out, from: h.lastID, since: time.Now()}
	ctx.Respond(reply{v: subscribeReply{missed: missed}})
}

// ready makes a registered subscriber live after sending it what was published while it
// was pending.
func (h *hub) ready(id string) {
	s, ok := h.subs[id]
	if !ok || s.live {
		return
	}
	for _, ev := range h.after(s.from) {
		if !h.deliver(id, s, ev) {
			h.stats.DroppedEvents++
			return
		}
	}
	s.live = true
}

// deliver queues ev for one subscriber without blocking. A full buffer drops the
// subscriber; a stream that is gone means its handler has ended (unsubscribed follows).
func (h *hub) deliver(id string, s *hubSub, ev *sse.Event) bool {
	if s.out.TryPublish(id, ev) {
		return true
	}
	delete(h.subs, id)
	if !s.out.StreamExists(id) {
		return true // not a drop: the client went away by itself
	}
	s.drop()
	h.stats.Dropped++
	h.log.Warn("dropped an /events subscriber that does not read", "subscriber", id)
	return false
}

func (h *hub) keepalive() {
	for id, s := range h.subs {
		if s.live {
			h.deliver(id, s, keepaliveEvent)
			continue
		}
		if time.Since(s.since) > h.opts.ReplayTimeout {
			delete(h.subs, id)
			s.drop()
			h.stats.Dropped++
			h.log.Warn("dropped an /events subscriber that did not read its replay", "subscriber", id)
		}
	}
}

// HubClient is the typed API of the hub actor, for /events and diagnostics.
type HubClient struct {
	sys *actor.ActorSystem
	hub *actor.PID
}

// NewHubClient returns a HubClient for the hub at pid.
func NewHubClient(sys *actor.ActorSystem, hub *actor.PID) *HubClient {
	return &HubClient{sys: sys, hub: hub}
}

func (c *HubClient) ask(ctx context.Context, msg any) (any, error) {
	return ask(c.sys, c.hub, ctx, msg, timeoutOf(ctx), "the event hub")
}

// Stats returns the hub's counters.
func (c *HubClient) Stats(ctx context.Context) (HubStats, error) {
	res, err := c.ask(ctx, getHubStats{})
	if err != nil {
		return HubStats{}, err
	}
	st, ok := res.(HubStats)
	if !ok {
		return HubStats{}, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	return st, nil
}

// Subscribe registers a new /events subscriber whose stream out holds under the
// subscription's ID. With replay, Missed holds the logged events with ids greater than
// after (all the log holds if after is older; none if it is newer than the newest id).
// Call SubscriberReady when out has registered the stream's reader, and End on the result
// when the stream has ended.
func (c *HubClient) Subscribe(ctx context.Context, after uint64, replay bool, out EventStreams) (*Subscription, error) {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	id := hex.EncodeToString(b[:])
	dropCtx, drop := context.WithCancel(context.Background())
	res, err := c.ask(ctx, subscribe{ID: id, After: after, Replay: replay, Drop: drop, Out: out})
	if err == nil {
		if rep, ok := res.(reply); !ok {
			err = Errorf(CodeInternal, "internal error: unexpected reply %T", res)
		} else if rep.err != nil {
			err = rep.err
		} else if sr, ok := rep.v.(subscribeReply); ok {
			return &Subscription{client: c, id: id, missed: sr.missed, dropCtx: dropCtx, drop: drop}, nil
		} else {
			err = Errorf(CodeInternal, "internal error: unexpected value %T", rep.v)
		}
	}
	drop()
	// The hub may have registered it after the ask gave up.
	c.sys.Root.Send(c.hub, unsubscribed{ID: id})
	return nil, err
}

// SubscriberReady tells the hub that the stream of subscriber id takes events now (its
// replay is written; for r3labs, OnSubscribe): events published from now on reach it.
func (c *HubClient) SubscriberReady(id string) {
	c.sys.Root.Send(c.hub, subscriberReady{ID: id})
}
