package daemon

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// TestShrinkProcessTable: the smaller table keeps the processes the actor system
// registered while it was made, and spawning, messaging and stopping work on it.
func TestShrinkProcessTable(t *testing.T) {
	sys := actor.NewActorSystem()
	shrinkProcessTable(sys)
	if n := len(sys.ProcessRegistry.LocalPIDs.LocalPIDs); n != processBuckets {
		t.Fatalf("%d buckets, want %d", n, processBuckets)
	}
	for _, id := range []string{"eventstream", "deadletter"} {
		if _, ok := sys.ProcessRegistry.GetLocal(id); !ok {
			t.Errorf("process %q lost", id)
		}
	}
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			c.Respond(s + "!")
		}
	}))
	got, err := sys.Root.RequestFuture(pid, "hi", 5e9).Result()
	if err != nil || got != "hi!" {
		t.Fatalf("answer %v, %v", got, err)
	}
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, ok := sys.ProcessRegistry.GetLocal(pid.Id); ok {
		t.Error("a stopped actor is still in the table")
	}
}
