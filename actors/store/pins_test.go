package store

import (
	"errors"
	"testing"
)

// TestPinsMergeReplaceDeleteAndSurviveReopen: a change without Replace merges into the
// stored record, Replace drops the old pins, Delete removes the record (then ServerPins says
// not found), an empty record is kept as such, and all of it survives a reopen.
func TestPinsMergeReplaceDeleteAndSurviveReopen(t *testing.T) {
	s, dir := openStore(t, Options{})
	pin := func(h string) ToolPin { return ToolPin{Hash: h, Def: []byte(`{"name":"` + h + `"}`)} }
	if err := s.WritePins([]PinChange{
		{Server: "a", Set: map[string]ToolPin{"x": pin("1"), "y": pin("2")}, Replace: true},
		{Server: "b", Set: map[string]ToolPin{"z": pin("3")}},
		{Server: "empty", Replace: true},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePins([]PinChange{
		{Server: "a", Set: map[string]ToolPin{"y": pin("22")}},
		{Server: "b", Set: map[string]ToolPin{"w": pin("4")}, Replace: true},
		{Server: "b", Set: map[string]ToolPin{"v": pin("5")}},
		{Server: "gone", Set: map[string]ToolPin{"q": pin("6")}},
		{Server: "gone", Delete: true},
	}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir, Options{})
	all, err := s.AllPins()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"a": {"x": "1", "y": "22"}, "b": {"w": "4", "v": "5"}, "empty": {}}
	if len(all) != len(want) {
		t.Fatalf("AllPins = %v, want servers %v", all, want)
	}
	for srv, tools := range want {
		got := all[srv]
		if got == nil || len(got) != len(tools) {
			t.Fatalf("pins of %s = %v, want %v", srv, got, tools)
		}
		for name, h := range tools {
			if got[name].Hash != h || string(got[name].Def) != `{"name":"`+h+`"}` {
				t.Errorf("pin %s/%s = %+v, want hash %s", srv, name, got[name], h)
			}
		}
	}
	if _, err := s.ServerPins("gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ServerPins(gone) = %v, want ErrNotFound", err)
	}
	if p, err := s.ServerPins("a"); err != nil || p["y"].Hash != "22" {
		t.Errorf("ServerPins(a) = %v, %v", p, err)
	}
}
