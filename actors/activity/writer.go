package activity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// IgnoreDeadLetterLogging: the writer's last jobs end after the actor has stopped.
func (jobDone) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: a tick may come after the actor stopped.
func (ageTick) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: a linger's timer may fire after the actor stopped.
func (lingerOver) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: a reader that gave up no longer waits.
func (reply) IgnoreDeadLetterLogging() {}

// writer does the activity actor's store work, one job at a time, off its mailbox. Its
// fields are its own.
type writer struct {
	o   Options
	cfg config.Activity

	scrubGen  uint64
	scrub     *config.Scrubber
	haveScrub bool

	oldest, last uint64 // stored ids: oldest (0: none) and the highest written
	ageChecked   time.Time
}

func newWriter(o Options, cfg config.Activity) *writer {
	return &writer{o: o, cfg: cfg}
}

func (w *writer) run(jobs <-chan job, sys *actor.ActorSystem, self *actor.PID, done chan<- struct{}) {
	defer close(done)
	var err error
	if w.oldest, w.last, err = w.o.Store.ActivityBounds(); err != nil {
		w.o.Logger.Warn("reading the activity log's bounds failed", "err", err)
	}
	w.retain(true)
	for j := range jobs {
		switch {
		case j.writes != nil:
			w.write(j.writes)
			w.retain(false)
		case j.cfg != nil:
			w.cfg = *j.cfg
			w.retain(true)
		case j.age:
			w.retain(true)
		case j.read != nil:
			sys.Root.Send(j.to, w.read(j.read))
		}
		sys.Root.Send(self, jobDone{})
	}
}

func (w *writer) read(m any) reply {
	switch m := m.(type) {
	case list:
		p, err := w.list(m.q)
		return reply{v: p, err: err}
	case get:
		data, err := w.o.Store.GetActivity(m.id)
		if errors.Is(err, store.ErrNotFound) {
			return reply{err: ErrNotFound}
		}
		if err != nil {
			return reply{err: err}
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return reply{err: fmt.Errorf("activity record %d: %w", m.id, err)}
		}
		return reply{v: r}
	}
	return reply{err: fmt.Errorf("activity log: unknown read %T", m)}
}

// Limits of a page.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

func (w *writer) list(q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	page := Page{Records: make([]Record, 0, min(limit, 64))}
	var bad error
	filtered := q.Filter != (Filter{})
	err := w.o.Store.ScanActivity(q.Before, func(id uint64, data []byte) bool {
		if filtered {
			// The filter's fields first, without the arguments' values: most records of
			// a narrow filter are skipped on these alone.
			var f filterFields
			if json.Unmarshal(data, &f) == nil {
				if r := f.record(); !q.Filter.Match(&r) {
					return true
				}
			}
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			bad = fmt.Errorf("activity record %d: %w", id, err)
			return true
		}
		if !q.Filter.Match(&r) {
			return true
		}
		if len(page.Records) == limit {
			page.Next = page.Records[limit-1].ID
			return false
		}
		page.Records = append(page.Records, r)
		return true
	})
	if bad != nil {
		w.o.Logger.Warn("skipped an undecodable activity record", "err", bad)
	}
	return page, err
}

// filterFields decodes only what Filter.Match reads.
type filterFields struct {
	Server    string    `json:"server"`
	Tool      string    `json:"tool"`
	Name      string    `json:"name"`
	Outcome   string    `json:"outcome"`
	SessionID string    `json:"session_id"`
	StartedAt time.Time `json:"started_at"`
}

func (f filterFields) record() Record {
	return Record{Server: f.Server, Tool: f.Tool, Name: f.Name, Outcome: f.Outcome, SessionID: f.SessionID, StartedAt: f.StartedAt}
}

// write scrubs, encodes and stores records in one synced batch, then publishes them.
func (w *writer) write(recs []Record) {
	scrub := w.scrubber()
	entries := make([]store.ActivityEntry, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		s := scrub
		if r.Scrub != nil {
			s = r.Scrub.Merge(scrub)
		}
		r.Error = s.Scrub(r.Error)
		r.Arguments, r.Truncated = cleanArguments(r.Arguments, s)
		data, err := json.Marshal(r)
		if err != nil {
			w.o.Logger.Warn("encoding an activity record failed", "id", r.ID, "err", err)
			continue
		}
		entries = append(entries, store.ActivityEntry{ID: r.ID, Data: data})
	}
	if err := w.o.Store.PutActivity(entries); err != nil {
		w.o.Logger.Warn("writing the activity log failed", "records", len(entries), "err", err)
		if w.o.Dropped != nil {
			w.o.Dropped(len(entries))
		}
		return
	}
	if n := len(entries); n > 0 {
		if w.oldest == 0 {
			w.oldest = entries[0].ID
		}
		w.last = entries[n-1].ID
	}
	if w.o.Written != nil {
		w.o.Written(len(entries))
	}
	if w.o.Published != nil {
		for _, r := range recs {
			w.o.Published(r.Summary())
		}
	}
}

// scrubber is the Scrubber of the store's secret values, built again when they change.
func (w *writer) scrubber() *config.Scrubber {
	if w.o.Secrets == nil {
		return nil
	}
	gen := w.o.Secrets.SecretsGeneration()
	if w.haveScrub && gen == w.scrubGen {
		return w.scrub
	}
	values, err := w.o.Secrets.SecretValues()
	if err != nil {
		// Keep the old scrubber and try again with the next batch.
		w.o.Logger.Warn("reading secret values for the activity log failed", "err", err)
		return w.scrub
	}
	w.scrub, w.scrubGen, w.haveScrub = config.NewScrubber(values...), gen, true
	return w.scrub
}

// retain applies max_records after every write and max_age at most every AgeCheckEvery
// (or now, when forced).
func (w *writer) retain(force bool) {
	if w.oldest == 0 {
		return
	}
	if max := uint64(w.cfg.Records()); w.last-w.oldest+1 > max {
		w.deleteBelow(w.last - max + 1)
	}
	now := time.Now()
	if !force && now.Sub(w.ageChecked) < w.o.AgeCheckEvery {
		return
	}
	w.ageChecked = now
	cutoff := now.Add(-w.cfg.Age())
	keep := uint64(0)
	err := w.o.Store.ScanActivityOldest(func(id uint64, data []byte) bool {
		var r struct {
			StartedAt time.Time `json:"started_at"`
		}
		if json.Unmarshal(data, &r) == nil && !r.StartedAt.Before(cutoff) {
			keep = id
			return false
		}
		return true
	})
	if err != nil {
		w.o.Logger.Warn("applying the activity log's max_age failed", "err", err)
		return
	}
	if keep == 0 {
		keep = w.last + 1 // every record is too old
	}
	if keep > w.oldest {
		w.deleteBelow(keep)
	}
}

func (w *writer) deleteBelow(id uint64) {
	if err := w.o.Store.DeleteActivityBelow(id); err != nil {
		w.o.Logger.Warn("trimming the activity log failed", "err", err)
		return
	}
	w.oldest = id
	if id > w.last {
		w.oldest = 0
	}
}

// cleanArguments returns args with every value s knows replaced in each string (keys
// included), re-encoded, and capped at MaxArgumentBytes (then a JSON string of the
// encoding's start, and true).
func cleanArguments(args json.RawMessage, s *config.Scrubber) (json.RawMessage, bool) {
	if len(args) == 0 {
		return nil, false
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	var out []byte
	if err := dec.Decode(&v); err != nil {
		out = encode(s.ReplaceValues(string(args)))
	} else {
		out = encode(scrubValue(v, s))
	}
	if len(out) <= MaxArgumentBytes {
		return out, false
	}
	// The cut encoding, as a string, must fit too: its escapes make it longer.
	text := string(out)
	for n := MaxArgumentBytes; n > 0; {
		cut := text[:n]
		for !utf8.ValidString(cut) {
			cut = cut[:len(cut)-1]
		}
		enc := encode(cut)
		if len(enc) <= MaxArgumentBytes {
			return enc, true
		}
		n -= len(enc) - MaxArgumentBytes
	}
	return encode(""), true
}

func scrubValue(v any, s *config.Scrubber) any {
	switch x := v.(type) {
	case string:
		return s.ReplaceValues(x)
	case []any:
		for i := range x {
			x[i] = scrubValue(x[i], s)
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[s.ReplaceValues(k)] = scrubValue(e, s)
		}
		return out
	}
	return v
}

// encode marshals v without escaping <, > and &; it cannot fail for decoded JSON.
func encode(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}
