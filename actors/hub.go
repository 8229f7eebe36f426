package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// HubOptions configure the SSE hub actor.
type HubOptions struct {
	// Store keeps the recent event log so that ids keep increasing across restarts.
	Store  *store.Store
	Logger *slog.Logger
}

// hub assigns every domain event an increasing id and records it in the store.
// (Fan-out to /events subscribers is added by the events work.)
type hub struct {
	opts   HubOptions
	lastID uint64
}

// NewHubProps returns the props of the hub actor.
func NewHubProps(opts HubOptions) *actor.Props {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return actor.PropsFromProducer(func() actor.Actor { return &hub{opts: opts} })
}

func (h *hub) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if h.opts.Store != nil {
			id, err := h.opts.Store.LastEventID()
			if err != nil {
				h.opts.Logger.Error("reading last event id", "err", err)
			}
			h.lastID = id
		}
	case Event:
		h.lastID++
		if h.opts.Store != nil {
			if err := h.opts.Store.AppendEvent(store.Event{ID: h.lastID, Name: m.Name, Data: m.Data}); err != nil {
				h.opts.Logger.Error("recording event", "err", err)
			}
		}
	}
}
