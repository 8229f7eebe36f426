package actors

import (
	"context"

	"github.com/r3labs/sse/v2"
)

// EventStreams is where the hub queues the events of its subscribers, one stream per
// subscriber id: a hijacked /events connection, which is the stream of its one subscriber
// (http/events_conn.go), or the r3labs server of /events (http/events.go), which
// *sse.Server implements. The hub calls only these two methods, and neither blocks;
// writing the streams to the clients is the HTTP layer's.
type EventStreams interface {
	// TryPublish queues ev on the subscriber's stream; false when its buffer is full or the
	// stream is gone.
	TryPublish(id string, ev *sse.Event) bool
	// StreamExists says whether the subscriber's stream is still there (false: its client
	// went away and the stream was removed).
	StreamExists(id string) bool
}

// Subscription is one /events subscriber as the hub knows it, from HubClient.Subscribe to
// End: its id (also its stream id in the EventStreams it subscribed with), the events to
// replay, and a context that ends when the hub drops it. Its holder calls
// HubClient.SubscriberReady once the stream takes events and End, once, when the stream
// has ended.
type Subscription struct {
	client  *HubClient
	id      string
	missed  []*sse.Event
	dropCtx context.Context
	drop    context.CancelFunc
}

// ID is the subscriber id the hub knows it by (also its stream id).
func (s *Subscription) ID() string { return s.id }

// Missed are the events to replay before the live ones, oldest first (shared with the hub:
// never modify them).
func (s *Subscription) Missed() []*sse.Event { return s.missed }

// Dropped ends when the hub drops the subscriber (it does not read, or the hub stopped),
// and at End.
func (s *Subscription) Dropped() context.Context { return s.dropCtx }

// End tells the hub the subscriber's stream has ended and is removed. Call it once, last.
func (s *Subscription) End() {
	s.drop()
	s.client.sys.Root.Send(s.client.hub, unsubscribed{ID: s.id})
}
