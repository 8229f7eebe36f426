package upstream

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mcpproxy/mcpproxy/config"
)

// prepare applies the defaults and makes the connection's Scrubber: opts.Scrub (the values
// the server's references resolved to) plus the credentials of cfg's URL, which the
// transports put in their errors (Go's url.Error quotes the whole URL). The transports'
// logger is wrapped so that their log lines are scrubbed too.
func (o *Options) prepare(cfg config.ServerConfig) *config.Scrubber {
	o.defaults()
	o.Scrub = o.Scrub.With(config.URLSecrets(cfg.URL)...)
	o.Logger = slog.New(&scrubHandler{h: o.Logger.Handler(), s: o.Scrub})
	return o.Scrub
}

// Scrubber is what the connection scrubs its errors, stderr excerpts and transport logs
// with; callers scrub with it what they build from the connection's other answers (a
// failed tool call's error, say).
func (c *Conn) Scrubber() *config.Scrubber { return c.scrub }

// scrubHandler scrubs a log record's message and attributes (strings, errors, Stringers
// and anything else printed with %+v) before its handler sees them. Numbers, booleans,
// times and durations pass as they are.
type scrubHandler struct {
	h slog.Handler
	s *config.Scrubber
}

func (h *scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *scrubHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &scrubHandler{h: h.h.WithAttrs(clean), s: h.s}
}

func (h *scrubHandler) WithGroup(name string) slog.Handler {
	return &scrubHandler{h: h.h.WithGroup(name), s: h.s}
}

func (h *scrubHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.s.Scrub(v.String()))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case nil:
			return a
		case error:
			return slog.String(a.Key, h.s.Scrub(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.s.Scrub(x.String()))
		default:
			return slog.String(a.Key, h.s.Scrub(fmt.Sprintf("%+v", x)))
		}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}
