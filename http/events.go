package http

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
)

// EventsHub is what /events needs from the hub actor; *actors.HubClient implements it.
type EventsHub interface {
	Subscribe(ctx context.Context, after uint64, replay bool) (*actors.Subscription, error)
}

var _ EventsHub = (*actors.HubClient)(nil)

// subscribeTimeout bounds the hub's answer to a new subscriber.
const subscribeTimeout = 5 * time.Second

// events handles GET /events: the SSE stream of servers.changed, config.reloaded and
// tools.indexed (API.md). A client that sends Last-Event-ID (or the lastEventId query
// some clients use) first gets the logged events after that id, then live ones.
func (s *Server) events(hub EventsHub) gin.HandlerFunc {
	return func(c *gin.Context) {
		after, replay, err := lastEventID(c.Request)
		if err != nil {
			s.writeError(c, err)
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), subscribeTimeout)
		sub, err := hub.Subscribe(ctx, after, replay)
		cancel()
		if err != nil {
			s.writeError(c, err)
			return
		}
		sub.Serve(c.Writer, c.Request)
	}
}

// headEvents handles HEAD /events: the stream's headers, no body.
func headEvents(c *gin.Context) {
	actors.SetEventStreamHeaders(c.Writer.Header())
	c.Status(http.StatusOK)
}

// lastEventID reads the id a reconnecting client last received: the Last-Event-ID header,
// else the lastEventId query parameter. Empty or absent means a fresh client (no replay).
// The server only ever sends decimal ids, so anything else is a client bug and gets 400
// INVALID_ARGUMENT rather than a silent full replay or none: the WHATWG EventSource does
// not retry after a 400, which surfaces the bug instead of looping.
func lastEventID(r *http.Request) (uint64, bool, error) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		v = strings.TrimSpace(r.URL.Query().Get("lastEventId"))
	}
	if v == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, errorf(actors.CodeInvalidArgument, "Last-Event-ID %q is not an event id (a decimal number)", v)
	}
	return id, true, nil
}
