package mcpserver

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
)

// recordsKept keeps what the endpoint records: the records themselves are what is under
// test here (the end-to-end tests record into the real activity log).
type recordsKept []activity.Record

func (k *recordsKept) Record(r activity.Record) { *k = append(*k, r) }

// A call's recorded result size is that of the result's JSON, counted without keeping it.
func TestRecordResultSize(t *testing.T) {
	res := mcp.NewToolResultText("héllo <b>&</b> world")
	res.StructuredContent = map[string]any{"n": 1.5, "s": []string{"a", "b"}}
	want, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var kept recordsKept
	e := &Endpoint{opts: Options{Activity: &kept}}
	e.recordResult(activity.Record{StartedAt: time.Now()}, res)
	if len(kept) != 1 || kept[0].ResultBytes != len(want) || kept[0].Outcome != activity.OutcomeOK {
		t.Fatalf("recorded %+v, want result_bytes %d and outcome ok", kept, len(want))
	}
}

// BenchmarkRecordResult records the size of a result of 1 MB of text.
func BenchmarkRecordResult(b *testing.B) {
	res := mcp.NewToolResultText(strings.Repeat("a line of text\n", 1<<16))
	var kept recordsKept
	e := &Endpoint{opts: Options{Activity: &kept}}
	b.ReportAllocs()
	for b.Loop() {
		kept = kept[:0]
		e.recordResult(activity.Record{StartedAt: time.Now()}, res)
	}
}
