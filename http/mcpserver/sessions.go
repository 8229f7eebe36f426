package mcpserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
)

// SessionStore is the part of the pebble store the tracker uses. *store.Store implements it.
type SessionStore interface {
	PutSession(store.Session) error
	GetSession(id string) (store.Session, error)
	ListSessions() ([]store.Session, error)
	PruneSessions(keep int) error
}

var _ SessionStore = (*store.Store)(nil)

// Tracker records every MCP session of the proxy's endpoints: it mints the session ids
// (it is the mcp-go SessionIdManager of every endpoint), keeps the live ones in memory with
// their counters, writes them to the store in the background, and closes idle ones.
//
// A session lives from the initialize request that created it until the client sends
// DELETE, it idles out, or the daemon stops. Idle means: no request in flight, no open GET
// stream, and no request for IdleTTL. Closing an idle session also makes mcp-go drop its
// state (through a DELETE handed to the endpoint's handler) and ends any stream it still
// holds; a client that comes back with the old id gets 404 and initializes again, as the
// MCP transport spec says.
//
// # Concurrency
//
// All methods are safe for concurrent use. Counters of a live session are atomics so the
// tool-call path takes only a read lock.
type Tracker struct {
	st      SessionStore
	log     *slog.Logger
	ttl     time.Duration
	flush   time.Duration
	keep    int
	mu      sync.RWMutex
	live    map[string]*liveSession
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// liveSession is one open session. id, endpoint, owner and started never change.
type liveSession struct {
	id       string
	endpoint string
	owner    *idManager
	started  time.Time

	calls    atomic.Int64
	last     atomic.Int64 // unix nanos of the last request start or end
	inflight atomic.Int32

	mu            sync.Mutex // guards the fields below
	clientName    string
	clientVersion string
	closed        bool
	streams       map[*int]context.CancelFunc
	dirty         bool // client info changed since the last write
	savedCalls    int64
	savedLast     int64
}

// trackerOptions configure newTracker; zero values take the defaults of Options.
type trackerOptions struct {
	idleTTL       time.Duration
	flushInterval time.Duration
	keepClosed    int
}

func newTracker(st SessionStore, log *slog.Logger, o trackerOptions) *Tracker {
	t := &Tracker{
		st: st, log: log, ttl: o.idleTTL, flush: o.flushInterval, keep: o.keepClosed,
		live: map[string]*liveSession{}, stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	t.closeStale()
	go t.run()
	return t
}

// closeStale marks sessions that were active when the previous daemon stopped (or crashed)
// as closed, since their ids are no longer accepted, and prunes old closed ones.
func (t *Tracker) closeStale() {
	if t.st == nil {
		return
	}
	old, err := t.st.ListSessions()
	if err != nil {
		t.log.Warn("listing stored MCP sessions failed", "err", err)
		return
	}
	for _, s := range old {
		if s.Status == store.SessionClosed {
			continue
		}
		s.Status = store.SessionClosed
		if err := t.st.PutSession(s); err != nil {
			t.log.Warn("closing stale MCP session failed", "session", s.ID, "err", err)
		}
	}
	if err := t.st.PruneSessions(t.keep); err != nil {
		t.log.Warn("pruning MCP sessions failed", "err", err)
	}
}

// run writes changed sessions every flush interval and closes idle ones.
func (t *Tracker) run() {
	defer close(t.stopped)
	sweep := min(max(t.ttl/4, 50*time.Millisecond), time.Minute)
	tick := min(sweep, t.flush)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	lastFlush, lastPrune := time.Now(), time.Now()
	for {
		select {
		case <-t.stop:
			return
		case now := <-ticker.C:
			t.sweepIdle(now)
			if now.Sub(lastFlush) >= t.flush {
				lastFlush = now
				t.flushAll()
			}
			if now.Sub(lastPrune) >= time.Hour && t.st != nil {
				lastPrune = now
				if err := t.st.PruneSessions(t.keep); err != nil {
					t.log.Warn("pruning MCP sessions failed", "err", err)
				}
			}
		}
	}
}

// Close stops the background work, closes every session still open and writes them all.
// The endpoints' handlers must have stopped first.
func (t *Tracker) Close() {
	t.once.Do(func() {
		close(t.stop)
		<-t.stopped
		for _, ls := range t.snapshotLive() {
			t.closeSession(ls, false)
		}
	})
}

func (t *Tracker) snapshotLive() []*liveSession {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*liveSession, 0, len(t.live))
	for _, ls := range t.live {
		out = append(out, ls)
	}
	return out
}

func (t *Tracker) lookup(id string) *liveSession {
	t.mu.RLock()
	ls := t.live[id]
	t.mu.RUnlock()
	return ls
}

// isLive reports whether id names an open session of endpoint.
func (t *Tracker) isLive(id, endpoint string) bool {
	if id == "" {
		return false
	}
	ls := t.lookup(id)
	if ls == nil || ls.endpoint != endpoint {
		return false
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return !ls.closed
}

// create registers a new session for endpoint and returns its id.
func (t *Tracker) create(owner *idManager) string {
	now := time.Now()
	ls := &liveSession{id: rand.Text(), endpoint: owner.endpoint, owner: owner, started: now.UTC(), dirty: true}
	ls.last.Store(now.UnixNano())
	t.mu.Lock()
	t.live[ls.id] = ls
	t.mu.Unlock()
	return ls.id
}

// setClient records the client's name and version from its initialize request.
func (t *Tracker) setClient(id string, info mcp.Implementation) {
	if ls := t.lookup(id); ls != nil {
		ls.mu.Lock()
		ls.clientName, ls.clientVersion, ls.dirty = info.Name, info.Version, true
		ls.mu.Unlock()
	}
}

// countCall counts one tools/call request of the session.
func (t *Tracker) countCall(id string) {
	if ls := t.lookup(id); ls != nil {
		ls.calls.Add(1)
		ls.last.Store(time.Now().UnixNano())
	}
}

// errNoSession is why a request with an unknown or closed session id is refused.
var errNoSession = errors.New("session not found")

// begin accounts for a request of session id on endpoint and returns the function that
// ends it. A GET (stream) request also gets a context that closing the session cancels.
func (t *Tracker) begin(ctx context.Context, id, endpoint string, stream bool) (context.Context, func(), error) {
	ls := t.lookup(id)
	if ls == nil || ls.endpoint != endpoint {
		return ctx, nil, errNoSession
	}
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return ctx, nil, errNoSession
	}
	ls.inflight.Add(1)
	var key *int
	if stream {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		key = new(int)
		if ls.streams == nil {
			ls.streams = map[*int]context.CancelFunc{}
		}
		ls.streams[key] = cancel
	}
	ls.mu.Unlock()
	ls.last.Store(time.Now().UnixNano())
	return ctx, func() {
		if key != nil {
			ls.mu.Lock()
			if cancel, ok := ls.streams[key]; ok {
				cancel()
				delete(ls.streams, key)
			}
			ls.mu.Unlock()
		}
		ls.last.Store(time.Now().UnixNano())
		ls.inflight.Add(-1)
	}, nil
}

// sweepIdle closes sessions idle for longer than the TTL.
func (t *Tracker) sweepIdle(now time.Time) {
	if t.ttl <= 0 {
		return
	}
	limit := now.Add(-t.ttl).UnixNano()
	for _, ls := range t.snapshotLive() {
		if ls.inflight.Load() == 0 && ls.last.Load() < limit {
			t.closeSession(ls, true)
		}
	}
}

// closeSession marks ls closed, ends its streams, writes it and forgets it. With purge, the
// endpoint's mcp-go handler is told to drop the session too.
func (t *Tracker) closeSession(ls *liveSession, purge bool) {
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return
	}
	ls.closed = true
	for _, cancel := range ls.streams {
		cancel()
	}
	ls.streams = nil
	ls.mu.Unlock()
	t.mu.Lock()
	delete(t.live, ls.id)
	t.mu.Unlock()
	t.save(ls)
	if purge && ls.owner != nil {
		ls.owner.purge(ls.id)
	}
}

func (ls *liveSession) view() store.Session {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.viewLocked()
}

func (ls *liveSession) viewLocked() store.Session {
	status := store.SessionActive
	if ls.closed {
		status = store.SessionClosed
	}
	return store.Session{
		ID: ls.id, ClientName: ls.clientName, ClientVersion: ls.clientVersion, Status: status,
		StartedAt: ls.started, LastActivity: time.Unix(0, ls.last.Load()).UTC(),
		ToolCalls: ls.calls.Load(), Endpoint: ls.endpoint,
	}
}

// save writes ls to the store if anything changed since the last write.
func (t *Tracker) save(ls *liveSession) {
	ls.mu.Lock()
	calls, last := ls.calls.Load(), ls.last.Load()
	if !ls.dirty && !ls.closed && calls == ls.savedCalls && last == ls.savedLast {
		ls.mu.Unlock()
		return
	}
	v := ls.viewLocked()
	ls.dirty, ls.savedCalls, ls.savedLast = false, calls, last
	ls.mu.Unlock()
	if t.st == nil {
		return
	}
	if err := t.st.PutSession(v); err != nil {
		t.log.Warn("saving MCP session failed", "session", v.ID, "err", err)
	}
}

func (t *Tracker) flushAll() {
	for _, ls := range t.snapshotLive() {
		t.save(ls)
	}
}

// Sessions lists every recorded session, newest first: the live ones as they are now, and
// the closed ones from the store.
func (t *Tracker) Sessions(context.Context) ([]store.Session, error) {
	var stored []store.Session
	if t.st != nil {
		var err error
		if stored, err = t.st.ListSessions(); err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
	}
	byID := make(map[string]int, len(stored))
	for i, s := range stored {
		byID[s.ID] = i
	}
	for _, ls := range t.snapshotLive() {
		v := ls.view()
		if i, ok := byID[v.ID]; ok {
			stored[i] = v
		} else {
			stored = append(stored, v)
		}
	}
	if stored == nil {
		stored = []store.Session{}
	}
	slices.SortFunc(stored, func(a, b store.Session) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return stored, nil
}

// Session returns one session; CodeNotFound if there is none with that id.
func (t *Tracker) Session(_ context.Context, id string) (store.Session, error) {
	if ls := t.lookup(id); ls != nil {
		return ls.view(), nil
	}
	if t.st != nil {
		s, err := t.st.GetSession(id)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Session{}, fmt.Errorf("get session: %w", err)
		}
	}
	return store.Session{}, actors.Errorf(actors.CodeNotFound, "session %q not found", id)
}

// idManager is the mcp-go SessionIdManager of one endpoint: ids come from the tracker, and
// only live sessions of this endpoint validate.
type idManager struct {
	t        *Tracker
	endpoint string
	handler  http.Handler // the endpoint's mcp-go handler, for purge
}

var _ server.SessionIdManager = (*idManager)(nil)

// Generate is called by mcp-go for an initialize request.
func (m *idManager) Generate() string { return m.t.create(m) }

// Validate is called by mcp-go for every other POST; the HTTP wrapper has already refused
// unknown and closed ids, so this only repeats the check for requests that bypass it.
func (m *idManager) Validate(id string) (bool, error) {
	ls := m.t.lookup(id)
	if ls == nil || ls.endpoint != m.endpoint {
		return false, fmt.Errorf("session %q: %w", id, errNoSession)
	}
	ls.mu.Lock()
	closed := ls.closed
	ls.mu.Unlock()
	return closed, nil
}

// Terminate is called by mcp-go for a client's DELETE and when it closes its sessions.
func (m *idManager) Terminate(id string) (bool, error) {
	if ls := m.t.lookup(id); ls != nil && ls.endpoint == m.endpoint {
		m.t.closeSession(ls, false)
	}
	return false, nil
}

// purge makes mcp-go forget a session the tracker closed: mcp-go has no exported call for
// that, but its DELETE handling does exactly this cleanup (and calls Terminate, which finds
// the session already closed).
func (m *idManager) purge(id string) {
	if m.handler == nil {
		return
	}
	req, err := http.NewRequest(http.MethodDelete, "/", http.NoBody)
	if err != nil {
		return
	}
	req.Header.Set(server.HeaderKeySessionID, id)
	m.handler.ServeHTTP(discardWriter{h: http.Header{}}, req)
}

// discardWriter is a ResponseWriter that drops the response of an internal request.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}
