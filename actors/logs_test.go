package actors

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func TestLogRingBounds(t *testing.T) {
	var g logRing
	for i := range MaxLogLines + 10 {
		g.add(LogLine{Text: fmt.Sprintf("line %d", i)})
	}
	got := g.tail(MaxLogLines + 100)
	if len(got) != MaxLogLines || got[0].Text != "line 10" || got[len(got)-1].Text != fmt.Sprintf("line %d", MaxLogLines+9) {
		t.Fatalf("lines %d, first %q, last %q", len(got), got[0].Text, got[len(got)-1].Text)
	}
	if tail := g.tail(3); len(tail) != 3 || tail[2].Text != got[len(got)-1].Text {
		t.Errorf("tail(3) = %+v", tail)
	}
	// Bytes: long lines push out old ones before the line count is reached.
	var b logRing
	long := strings.Repeat("x", MaxLogLineBytes)
	for range 200 {
		b.add(LogLine{Text: long})
	}
	if b.bytes > MaxLogBytes || len(b.lines) != MaxLogBytes/MaxLogLineBytes {
		t.Errorf("bytes %d lines %d", b.bytes, len(b.lines))
	}
	if n := len(clipLine(strings.Repeat("é", MaxLogLineBytes))); n > MaxLogLineBytes+len(" …(cut)") {
		t.Errorf("clipped line is %d bytes", n)
	}
	var none *logRing
	if tail := none.tail(5); tail == nil || len(tail) != 0 {
		t.Errorf("tail of no log = %#v", tail)
	}
}

// TestLogsFollow: a follower gets the backlog and each new line; a follower that does not
// read is told how many lines it missed; removing the server closes the follow.
func TestLogsFollow(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	pid := sys.Root.Spawn(newLogsProps())
	defer sys.Root.Stop(pid)
	ask := func(msg any) any {
		t.Helper()
		res, err := sys.Root.RequestFuture(pid, msg, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(reply).v
	}
	sys.Root.Send(pid, appendLogs{Server: "fx", Stream: LogStderr, Lines: []string{"one", "two"}})
	if lines := ask(getLogs{Server: "fx", Tail: 1}).([]LogLine); len(lines) != 1 || lines[0].Text != "two" || lines[0].Stream != LogStderr {
		t.Fatalf("tail 1 = %+v", lines)
	}
	f := ask(followLogs{Server: "fx", Tail: 5}).(*LogFollow)
	if len(f.Lines) != 2 {
		t.Fatalf("backlog %+v", f.Lines)
	}
	sys.Root.Send(pid, appendLogs{Server: "fx", Stream: LogProxy, Lines: []string{"three"}})
	select {
	case l := <-f.C:
		if l.Text != "three" || l.Stream != LogProxy {
			t.Errorf("followed %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no followed line")
	}

	// Flood past the buffer without reading, then read: the lines that did not fit are
	// counted in a note.
	flood := make([]string, followBuffer+50)
	for i := range flood {
		flood[i] = fmt.Sprintf("flood %d", i)
	}
	sys.Root.Send(pid, appendLogs{Server: "fx", Stream: LogStderr, Lines: flood})
	sys.Root.Send(pid, appendLogs{Server: "fx", Stream: LogStderr, Lines: []string{"after"}})
	ask(getLogs{Server: "fx"}) // both appends are done
	for range followBuffer {
		<-f.C
	}
	sys.Root.Send(pid, appendLogs{Server: "fx", Stream: LogStderr, Lines: []string{"late"}})
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < 2 {
		select {
		case l := <-f.C:
			got = append(got, l.Text)
		case <-timeout:
			t.Fatalf("after the flood got %v", got)
		}
	}
	if got[0] != "(51 lines not shown: the reader was too slow)" || got[1] != "late" {
		t.Errorf("after the flood: %v", got)
	}

	sys.Root.Send(pid, dropLogs{Server: "fx"})
	select {
	case _, ok := <-f.C:
		if ok {
			t.Error("a line after the server was dropped")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the follow was not closed")
	}
	if lines := ask(getLogs{Server: "fx", Tail: 10}).([]LogLine); len(lines) != 0 {
		t.Errorf("a dropped server's log: %+v", lines)
	}
	f.Stop() // after the close: harmless
}
