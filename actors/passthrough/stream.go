package passthrough

import "sync"

// Stream is the queue between a session actor and the HTTP handler that writes one
// response stream: the event stream (or JSON answer) of one POST, or the session's GET
// stream. The actor appends encoded messages and says when no more will come; the handler
// waits on Wake and takes them. It holds nothing but messages on their way out: which
// messages go to which stream is decided by the actor alone.
//
// The queue has no bound of its own: it holds what the upstream sent for this stream and
// the handler has not written yet. Messages kept while no GET stream is open are bounded
// by the session (maxBacklog).
type Stream struct {
	events bool
	wake   chan struct{}

	mu    sync.Mutex
	queue []item
	done  bool
}

// item is one queued message; answers (responses to the agent's own requests) are never
// moved to another stream.
type item struct {
	data   []byte
	answer bool
}

// NewStream returns the stream of one HTTP response. events says whether it is an event
// stream, which may carry what the upstream sends besides the answers; a JSON-only POST
// gets its answers alone.
func NewStream(events bool) *Stream {
	return &Stream{events: events, wake: make(chan struct{}, 1)}
}

// Wake is signalled when there is something to take, or the stream is done.
func (s *Stream) Wake() <-chan struct{} { return s.wake }

// Take returns the queued messages; done means nothing more will come: a POST's requests
// are all answered, or the session (or, for a GET stream, its use) has ended.
func (s *Stream) Take() (msgs [][]byte, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.queue {
		msgs = append(msgs, it.data)
	}
	s.queue = nil
	return msgs, s.done
}

// Unread puts back messages the handler took but could not write, ahead of the rest, so
// that the session keeps them for its next GET stream.
func (s *Stream) Unread(msgs [][]byte) {
	if len(msgs) == 0 {
		return
	}
	back := make([]item, 0, len(msgs)+len(s.queue))
	for _, m := range msgs {
		back = append(back, item{data: m})
	}
	s.mu.Lock()
	s.queue = append(back, s.queue...)
	s.mu.Unlock()
}

func (s *Stream) push(msg []byte, answer bool) {
	s.mu.Lock()
	s.queue = append(s.queue, item{data: msg, answer: answer})
	s.mu.Unlock()
	s.signal()
}

// end says that nothing more will come.
func (s *Stream) end() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.signal()
}

// drain removes and returns what is queued, answers left out.
func (s *Stream) drain() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, it := range s.queue {
		if !it.answer {
			out = append(out, it.data)
		}
	}
	s.queue = nil
	return out
}

// signal wakes the handler without blocking.
func (s *Stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
