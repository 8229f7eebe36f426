package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestSessionRoundTrip(t *testing.T) {
	s, _ := openStore(t, Options{})
	start := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	sess := Session{
		ID: "abc", ClientName: "cursor", ClientVersion: "1.2", Status: SessionActive,
		StartedAt: start, LastActivity: start.Add(time.Minute), ToolCalls: 7, Endpoint: "/mcp",
	}
	if err := s.PutSession(sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession("abc")
	if err != nil || got != sess {
		t.Errorf("GetSession = %+v, %v; want %+v", got, err, sess)
	}
	sess.Status, sess.ToolCalls = SessionClosed, 8
	if err := s.PutSession(sess); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSession("abc"); got != sess {
		t.Errorf("after update GetSession = %+v, want %+v", got, sess)
	}
	if _, err := s.GetSession("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetSession(missing) err = %v, want ErrNotFound", err)
	}
	if err := s.PutSession(Session{}); err == nil {
		t.Error("PutSession with empty id succeeded")
	}
}

// putSessions stores sessions s0..s(n-1), started one minute apart (s0
// oldest); the ids in closed are closed, the rest active.
func putSessions(t *testing.T, s *Store, n int, closed map[int]bool) {
	t.Helper()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		status := SessionActive
		if closed[i] {
			status = SessionClosed
		}
		sess := Session{ID: fmt.Sprintf("s%d", i), Status: status, StartedAt: base.Add(time.Duration(i) * time.Minute)}
		if err := s.PutSession(sess); err != nil {
			t.Fatal(err)
		}
	}
}

func sessionIDs(t *testing.T, s *Store) []string {
	t.Helper()
	list, err := s.ListSessions()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, sess := range list {
		ids = append(ids, sess.ID)
	}
	return ids
}

func TestListSessionsNewestFirst(t *testing.T) {
	s, _ := openStore(t, Options{})
	// Insert in an order that differs from both id order and time order.
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, in := range []struct {
		id  string
		min int
	}{{"b", 5}, {"a", 1}, {"c", 3}, {"d", 5}} {
		if err := s.PutSession(Session{ID: in.id, StartedAt: base.Add(time.Duration(in.min) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"b", "d", "c", "a"} // b and d tie; id order breaks it
	if got := sessionIDs(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("ListSessions order = %v, want %v", got, want)
	}
}

func TestPruneSessions(t *testing.T) {
	// s0..s5, s5 newest; s1 and s4 are active.
	closed := map[int]bool{0: true, 2: true, 3: true, 5: true}
	tests := []struct {
		keep int
		want []string
	}{
		{keep: 0, want: []string{"s4", "s1"}},
		{keep: -1, want: []string{"s4", "s1"}},
		{keep: 1, want: []string{"s5", "s4", "s1"}},
		{keep: 2, want: []string{"s5", "s4", "s3", "s1"}},
		{keep: 4, want: []string{"s5", "s4", "s3", "s2", "s1", "s0"}},
		{keep: 100, want: []string{"s5", "s4", "s3", "s2", "s1", "s0"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.keep), func(t *testing.T) {
			s, _ := openStore(t, Options{})
			putSessions(t, s, 6, closed)
			if err := s.PruneSessions(tt.keep); err != nil {
				t.Fatal(err)
			}
			if got := sessionIDs(t, s); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after PruneSessions(%d): %v, want %v", tt.keep, got, tt.want)
			}
		})
	}
}
