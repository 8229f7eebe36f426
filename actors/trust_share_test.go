package actors

import (
	"encoding/json"
	"testing"
	"unsafe"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// TestListedSharesPinnedDefinitions: after a listing, a pin read from the store whose hash
// the tool lists holds the tool's copy of the definition, not its own; a pin of another
// hash keeps its own (it is the "previous" definition of a changed tool).
func TestListedSharesPinnedDefinitions(t *testing.T) {
	same := json.RawMessage(`{"name":"a"}`)
	old := json.RawMessage(`{"name":"b","description":"old"}`)
	r := &registry{pins: map[string]map[string]store.ToolPin{"s": {
		"a": {Hash: "h1", Def: append(json.RawMessage(nil), same...)},
		"b": {Hash: "h2", Def: old},
	}}}
	rw := &row{tools: []Tool{
		{Raw: "a", Hash: "h1", Def: same},
		{Raw: "b", Hash: "h3", Def: json.RawMessage(`{"name":"b","description":"new"}`)},
	}}
	if r.listed("s", rw) {
		t.Fatal("a server with pins pinned its listing again")
	}
	if p := r.pins["s"]["a"]; unsafe.SliceData(p.Def) != unsafe.SliceData(same) || p.Hash != "h1" {
		t.Errorf("pin of an unchanged tool keeps its own copy: %s", p.Def)
	}
	if p := r.pins["s"]["b"]; string(p.Def) != string(old) || p.Hash != "h2" {
		t.Errorf("pin of a changed tool = %+v, want the old definition", p)
	}
}
