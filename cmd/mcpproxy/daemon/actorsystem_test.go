package daemon

import (
	"runtime"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// TestActorSystemIsSmall: with one shard per process-registry bucket (actorsystem.go) a new
// actor system allocates well under a megabyte; with the library's default 32 shards it is
// over two.
func TestActorSystemIsSmall(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sys := actor.NewActorSystem()
	runtime.ReadMemStats(&after)
	defer sys.Shutdown()
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("a new actor system allocated %d KB", got>>10)
	}
}
