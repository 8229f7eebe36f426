package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// TestOperationsExpire: an operation is kept TTL after it started and the history holds
// at most Keep; a pending server settles only after it passed through connecting.
func TestOperationsExpire(t *testing.T) {
	sys := actor.NewActorSystem()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	oc, err := SpawnOperations(sys, OperationsOptions{Keep: 3, TTL: time.Minute,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Root.Stop(oc.PID())
	ctx := context.Background()
	sys.Root.Send(oc.PID(), opStart{ID: "a", Op: BulkRestartAll, Servers: []OperationServer{{Name: "s", Status: OpPending}}})
	sys.Root.Send(oc.PID(), opServerState{Name: "s", State: StateReady}) // still ready before its restart: not settled
	op, err := oc.Operation(ctx, "a")
	if err != nil || op.Done || op.Pending != 1 {
		t.Fatalf("before connecting: %+v %v", op, err)
	}
	sys.Root.Send(oc.PID(), opServerState{Name: "s", State: StateConnecting})
	sys.Root.Send(oc.PID(), opServerState{Name: "s", State: StateError, LastError: "boom"})
	if op, err = oc.Operation(ctx, "a"); err != nil || !op.Done || op.Failed != 1 || op.Servers[0].Error != "boom" {
		t.Fatalf("after error: %+v %v", op, err)
	}

	now.Add(int64(30 * time.Second))
	sys.Root.Send(oc.PID(), opStart{ID: "b", Op: BulkReconnect})
	now.Add(int64(31 * time.Second)) // a is 61 s old, b 31 s
	if _, err := oc.Operation(ctx, "a"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("a after its TTL: %v", err)
	}
	if op, err := oc.Operation(ctx, "b"); err != nil || !op.Done || op.Total != 0 {
		t.Fatalf("b: %+v %v", op, err)
	}
	for _, id := range []string{"c", "d", "e"} {
		sys.Root.Send(oc.PID(), opStart{ID: id, Op: BulkReconnect})
	}
	if _, err := oc.Operation(ctx, "b"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("b past Keep: %v", err)
	}
	if _, err := oc.Operation(ctx, "e"); err != nil {
		t.Fatalf("e: %v", err)
	}
}
