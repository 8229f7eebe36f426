package actors

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
)

// Server logs: the last lines of each server's own stderr (stdio servers) and of the
// daemon's messages about it (connecting, connected, failures with their backoff, restarts,
// stops), kept in memory by the logs actor, a child of the registry named "logs". It is the
// one owner of the rings and of the followers of GET /api/v1/servers/{name}/logs?follow=true.
// The rings outlive the upstream actors (a restart or a reconfiguration spawns a new one;
// what the old process wrote before it died is what the user needs to read) and are dropped
// with the server.
//
// Everything arrives already scrubbed: stderr by the connection's Scrubber (the values the
// server's references resolved to, URL credentials), the daemon's messages by the upstream
// actor's, as last_error is. So a log line never shows a secret value.

// Bounds of one server's log. A line longer than MaxLogLineBytes is cut (a server that
// writes megabytes without a newline costs at most that per line).
const (
	MaxLogLines     = 1000
	MaxLogBytes     = 256 << 10
	MaxLogLineBytes = 4 << 10
	// DefaultLogTail is how many lines GET .../logs answers without ?tail=.
	DefaultLogTail = 200
	// followBuffer is how many lines a follower may lag behind before lines are dropped
	// for it (it is told how many).
	followBuffer = 256
)

// Streams of a log line.
const (
	LogStderr = "stderr" // the server's own stderr
	LogProxy  = "proxy"  // the daemon's messages about the server
)

// LogLine is one line of a server's log.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Text   string    `json:"text"`
}

// LogFollow is a live view of a server's log: Lines are the last lines at the time it was
// made, then C delivers each new one. C is closed when the server is removed or the follow
// is stopped (Stop, which must be called when the reader is done).
type LogFollow struct {
	Lines []LogLine
	C     <-chan LogLine
	Stop  func()
}

// Messages of the logs actor. getLogs and followLogs come through the registry, which
// answers 404 for an unknown server and forwards the rest with the caller as sender.
type (
	appendLogs struct {
		Server string
		Stream string
		Lines  []string
	}
	getLogs struct {
		Server string
		Tail   int
	}
	followLogs struct {
		Server string
		Tail   int
	}
	unfollowLogs struct {
		Server string
		ID     uint64
	}
	dropLogs struct{ Server string }
)

// IgnoreDeadLetterLogging: stderr lines may arrive while the daemon stops.
func (appendLogs) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: a follower may stop after the daemon.
func (unfollowLogs) IgnoreDeadLetterLogging() {}

// logRing is one server's log: a circular buffer bounded in lines and bytes.
type logRing struct {
	lines []LogLine // circular, len <= MaxLogLines
	head  int       // index of the oldest line
	bytes int
}

func (g *logRing) add(l LogLine) {
	g.bytes += len(l.Text)
	if len(g.lines) < MaxLogLines {
		g.lines = append(g.lines, l)
	} else {
		g.bytes -= len(g.lines[g.head].Text)
		g.lines[g.head] = l
		g.head = (g.head + 1) % len(g.lines)
	}
	for g.bytes > MaxLogBytes && len(g.lines) > 1 {
		g.drop()
	}
}

// drop removes the oldest line.
func (g *logRing) drop() {
	g.bytes -= len(g.lines[g.head].Text)
	out := make([]LogLine, 0, len(g.lines)-1)
	out = append(out, g.lines[g.head+1:]...)
	out = append(out, g.lines[:g.head]...)
	g.lines, g.head = out, 0
}

// tail returns the last n lines, oldest first.
func (g *logRing) tail(n int) []LogLine {
	if g == nil {
		return []LogLine{}
	}
	n = min(n, len(g.lines))
	out := make([]LogLine, 0, n)
	for i := len(g.lines) - n; i < len(g.lines); i++ {
		out = append(out, g.lines[(g.head+i)%len(g.lines)])
	}
	return out
}

type follower struct {
	ch      chan LogLine
	dropped int // lines not delivered because ch was full
}

type logsActor struct {
	rings   map[string]*logRing
	follows map[string]map[uint64]*follower
	nextID  uint64
}

func newLogsProps() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &logsActor{rings: map[string]*logRing{}, follows: map[string]map[uint64]*follower{}}
	})
}

func (a *logsActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case appendLogs:
		a.append(m)
	case getLogs:
		ctx.Respond(reply{v: a.rings[m.Server].tail(m.Tail)})
	case followLogs:
		a.follow(ctx, m)
	case unfollowLogs:
		if f := a.follows[m.Server][m.ID]; f != nil {
			close(f.ch)
			delete(a.follows[m.Server], m.ID)
			if len(a.follows[m.Server]) == 0 {
				delete(a.follows, m.Server)
			}
		}
	case dropLogs:
		delete(a.rings, m.Server)
		for _, f := range a.follows[m.Server] {
			close(f.ch)
		}
		delete(a.follows, m.Server)
	case *actor.Stopping:
		for _, fs := range a.follows {
			for _, f := range fs {
				close(f.ch)
			}
		}
		a.follows = nil
	}
}

func (a *logsActor) append(m appendLogs) {
	g := a.rings[m.Server]
	if g == nil {
		g = &logRing{}
		a.rings[m.Server] = g
	}
	now := time.Now().UTC()
	for _, text := range m.Lines {
		l := LogLine{Time: now, Stream: m.Stream, Text: clipLine(text)}
		g.add(l)
		for _, f := range a.follows[m.Server] {
			f.send(l)
		}
	}
}

// send delivers a line without blocking the actor; a reader that lags is told how many
// lines it missed as soon as there is room again.
func (f *follower) send(l LogLine) {
	if f.dropped > 0 {
		note := LogLine{Time: l.Time, Stream: LogProxy, Text: "(" + strconv.Itoa(f.dropped) + " lines not shown: the reader was too slow)"}
		select {
		case f.ch <- note:
			f.dropped = 0
		default:
			f.dropped++
			return
		}
	}
	select {
	case f.ch <- l:
	default:
		f.dropped++
	}
}

func (a *logsActor) follow(ctx actor.Context, m followLogs) {
	a.nextID++
	id, server, self, sys := a.nextID, m.Server, ctx.Self(), ctx.ActorSystem()
	f := &follower{ch: make(chan LogLine, followBuffer)}
	if a.follows[server] == nil {
		a.follows[server] = map[uint64]*follower{}
	}
	a.follows[server][id] = f
	ctx.Respond(reply{v: &LogFollow{
		Lines: a.rings[server].tail(m.Tail), C: f.ch,
		Stop: func() { sys.Root.Send(self, unfollowLogs{Server: server, ID: id}) },
	}})
}

// clipLine cuts a line at MaxLogLineBytes on a rune boundary.
func clipLine(s string) string {
	if len(s) <= MaxLogLineBytes {
		return s
	}
	cut := MaxLogLineBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " …(cut)"
}

// splitLines splits text written to a stream into lines, dropping a trailing "\r" and
// empty lines.
func splitLines(text string) []string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}
