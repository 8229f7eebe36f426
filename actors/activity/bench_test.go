package activity

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// BenchmarkRecordsWritten measures how many records per second the actor and its writer
// take into a real store (scrubbed, encoded, synced batches): the log's own capacity,
// apart from the calls that feed it. Reported as records/s.
func BenchmarkRecordsWritten(b *testing.B) {
	c, _, written := start(b, config.Activity{}, secretsOf{"a-secret-value"})
	args := json.RawMessage(`{"repo":"octo/hello","title":"Crash on start","body":"steps to reproduce: run it"}`)
	b.ResetTimer()
	began := time.Now()
	for range b.N {
		c.Record(Record{Server: "github", Tool: "create_issue", Outcome: OutcomeOK, Arguments: args, StartedAt: time.Now(), ResultBytes: 312})
	}
	for written.Load() < int64(b.N) {
		time.Sleep(time.Millisecond) // polling the writer's count, bounded by the benchmark's own time
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "records/s")
}

// BenchmarkListFilteredFullScan measures a listing whose filter matches nothing over
// 100,000 records: the slowest page there is.
func BenchmarkListFilteredFullScan(b *testing.B) {
	c, _, written := start(b, config.Activity{}, nil)
	args := json.RawMessage(`{"repo":"octo/hello","title":"Crash on start","body":"steps to reproduce: run it"}`)
	for range 100_000 {
		c.Record(Record{Server: "github", Tool: "create_issue", Outcome: OutcomeOK, Arguments: args, StartedAt: time.Now()})
	}
	for written.Load() < 100_000 {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		listPage(b, c, Query{Filter: Filter{Outcome: OutcomeRefused}})
	}
}
