package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Operations: the progress of bulk operations (enable_all, disable_all, restart_all,
// reconnect). The operations actor, named "operations", owns them: each operation's
// servers and their outcome, and the bounded history (the last OperationsOptions.Keep, and
// none older than OperationsOptions.TTL).
//
// How it follows the servers: the registry sends it directly, not through the hub. The
// registry starts an operation (opStart) in the same turn in which it acts on the servers,
// and then sends opServerState for every change of a server's row (registry.changed and
// registry.removed). Both come from one sender into one mailbox, so the operation always
// exists before the first state change it must see, and none is missed or seen twice.
// Following the hub's servers.changed events would need a subscription built for HTTP
// streams, events encoded and decoded again, and a race between the start of the operation
// and the first events of its servers. A change of a server with no operation in progress
// costs one map lookup here.
//
// An outcome settles as the issue asks: ready, failed (with the server's error) after its
// first attempt, or skipped. restart, reconnect and enable wait for the server to pass
// through connecting before they read its state, so a server still ready while its restart
// waits in the restart queue is not taken for restarted; after connecting, ready is ready,
// and error, backoff or needs_auth is failed. disable settles at once as ready: the
// registry stops the server in the turn it answers. A server disabled or removed while its
// operation waits is skipped with the reason. Expiry is checked on every message, so no
// timer runs: an expired operation answers 404 and is gone from memory at the next message
// at the latest, and memory is bounded by Keep anyway.

// Outcomes of one server in an operation.
const (
	OpPending = "pending"
	OpReady   = "ready"
	OpFailed  = "failed"
	OpSkipped = "skipped"
)

// Defaults of OperationsOptions.
const (
	DefaultOperationsKeep = 100
	DefaultOperationsTTL  = time.Hour
)

// OperationsOptions configure the operations actor.
type OperationsOptions struct {
	// Hub receives operation.progress and operation.done; nil publishes nothing.
	Hub *actor.PID
	// Keep is how many operations are kept (DefaultOperationsKeep); the oldest go first.
	Keep int
	// TTL is how long an operation is kept after it started (DefaultOperationsTTL).
	TTL time.Duration
	// Now is the clock (time.Now); tests move it.
	Now    func() time.Time
	Logger *slog.Logger
}

// OperationServer is one server's outcome in an operation.
type OperationServer struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Error is the server's error when it failed, or why it was skipped.
	Error string `json:"error,omitempty"`
	// armed is set once the server has passed through connecting (see the package notes).
	armed bool
}

// OperationCounts counts an operation's servers by outcome.
type OperationCounts struct {
	Total   int `json:"total"`
	Pending int `json:"pending"`
	Ready   int `json:"ready"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Operation is a bulk operation's progress, as GET /api/v1/operations/{id} shows it.
type Operation struct {
	ID string `json:"id"`
	Op string `json:"op"`
	OperationCounts
	Done       bool              `json:"done"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at"`
	Servers    []OperationServer `json:"servers"`
}

// OperationEvent is the payload of operation.progress and operation.done: counts only.
type OperationEvent struct {
	ID string `json:"id"`
	Op string `json:"op"`
	OperationCounts
	Done bool `json:"done"`
}

type (
	// opStart, from the registry: a new operation over servers (in order), each pending,
	// skipped (with Error) or ready.
	opStart struct {
		ID      string
		Op      string
		Servers []OperationServer
	}
	// opServerState, from the registry: a server's row changed (Removed: it is gone).
	opServerState struct {
		Name      string
		State     State
		LastError string
		Removed   bool
	}
	getOperation struct{ ID string }
)

type operation struct {
	Operation
	index map[string]int // server -> position in Servers
}

type operationsActor struct {
	opts   OperationsOptions
	ops    map[string]*operation
	order  []string            // ids, oldest first
	active map[string][]string // server -> ids of unfinished operations that wait for it
}

// NewOperationsProps returns the props of the operations actor.
func NewOperationsProps(opts OperationsOptions) *actor.Props {
	if opts.Keep <= 0 {
		opts.Keep = DefaultOperationsKeep
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultOperationsTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &operationsActor{opts: opts, ops: map[string]*operation{}, active: map[string][]string{}}
	})
}

// SpawnOperations starts the operations actor, named "operations".
func SpawnOperations(sys *actor.ActorSystem, opts OperationsOptions) (*OperationsClient, error) {
	pid, err := sys.Root.SpawnNamed(NewOperationsProps(opts), "operations")
	if err != nil {
		return nil, err
	}
	return &OperationsClient{sys: sys, pid: pid}, nil
}

// newOperationID is a random id: operations are not guessable from one another.
func newOperationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "op_" + hex.EncodeToString(b[:])
}

func (a *operationsActor) Receive(ctx actor.Context) {
	a.expire()
	switch m := ctx.Message().(type) {
	case opStart:
		a.start(ctx, m)
	case opServerState:
		a.serverState(ctx, m)
	case getOperation:
		op, ok := a.ops[m.ID]
		if !ok {
			ctx.Respond(reply{err: Errorf(CodeNotFound, "operation %q not found (unknown or expired)", m.ID)})
			return
		}
		v := op.Operation
		v.Servers = slices.Clone(op.Servers)
		ctx.Respond(reply{v: v})
	}
}

func (a *operationsActor) start(ctx actor.Context, m opStart) {
	op := &operation{Operation: Operation{ID: m.ID, Op: m.Op, StartedAt: a.opts.Now().UTC(),
		Servers: m.Servers}, index: make(map[string]int, len(m.Servers))}
	if op.Servers == nil {
		op.Servers = []OperationServer{}
	}
	for i, s := range op.Servers {
		op.index[s.Name] = i
		if s.Status == OpPending {
			a.active[s.Name] = append(a.active[s.Name], m.ID)
		}
	}
	op.recount()
	a.ops[m.ID] = op
	a.order = append(a.order, m.ID)
	for len(a.order) > a.opts.Keep {
		a.drop(a.order[0])
	}
	a.publish(ctx, op, "operation.progress")
	a.finishIfDone(ctx, op)
}

func (a *operationsActor) serverState(ctx actor.Context, m opServerState) {
	ids := a.active[m.Name]
	if len(ids) == 0 {
		return
	}
	var still []string
	for _, id := range ids {
		op := a.ops[id]
		if op == nil || op.Done {
			continue
		}
		s := &op.Servers[op.index[m.Name]]
		settled := true
		switch {
		case m.Removed:
			s.Status, s.Error = OpSkipped, "the server was removed"
		case m.State == StateDisabled:
			s.Status, s.Error = OpSkipped, "the server was disabled"
		case m.State == StateConnecting:
			s.armed, settled = true, false
		case !s.armed:
			settled = false
		case m.State == StateReady:
			s.Status = OpReady
		case m.State == StateError || m.State == StateBackoff || m.State == StateNeedsAuth:
			s.Status, s.Error = OpFailed, m.LastError
			if s.Error == "" {
				s.Error = string(m.State)
			}
		default:
			settled = false
		}
		if !settled {
			still = append(still, id)
			continue
		}
		op.recount()
		a.publish(ctx, op, "operation.progress")
		a.finishIfDone(ctx, op)
	}
	if len(still) == 0 {
		delete(a.active, m.Name)
	} else {
		a.active[m.Name] = still
	}
}

func (op *operation) recount() {
	c := OperationCounts{Total: len(op.Servers)}
	for _, s := range op.Servers {
		switch s.Status {
		case OpPending:
			c.Pending++
		case OpReady:
			c.Ready++
		case OpFailed:
			c.Failed++
		case OpSkipped:
			c.Skipped++
		}
	}
	op.OperationCounts = c
}

func (a *operationsActor) finishIfDone(ctx actor.Context, op *operation) {
	if op.Done || op.Pending > 0 {
		return
	}
	op.Done = true
	t := a.opts.Now().UTC()
	op.FinishedAt = &t
	a.publish(ctx, op, "operation.done")
}

func (a *operationsActor) publish(ctx actor.Context, op *operation, name string) {
	if a.opts.Hub == nil {
		return
	}
	ctx.Send(a.opts.Hub, Event{Name: name, Payload: OperationEvent{ID: op.ID, Op: op.Op,
		OperationCounts: op.OperationCounts, Done: op.Done || name == "operation.done"}})
}

// expire drops operations older than TTL (order is by start, so from the front).
func (a *operationsActor) expire() {
	cut := a.opts.Now().Add(-a.opts.TTL)
	for len(a.order) > 0 && a.ops[a.order[0]].StartedAt.Before(cut) {
		a.drop(a.order[0])
	}
}

// drop forgets the oldest operation (id is a.order[0]) and takes it off the lists of its
// servers still pending.
func (a *operationsActor) drop(id string) {
	op := a.ops[id]
	delete(a.ops, id)
	a.order = a.order[1:]
	for _, s := range op.Servers {
		if s.Status != OpPending {
			continue
		}
		ids := slices.DeleteFunc(a.active[s.Name], func(x string) bool { return x == id })
		if len(ids) == 0 {
			delete(a.active, s.Name)
		} else {
			a.active[s.Name] = ids
		}
	}
}

// OperationsClient is the typed API of the operations actor.
type OperationsClient struct {
	sys *actor.ActorSystem
	pid *actor.PID
}

// PID is the operations actor; the registry is given it (RegistryOptions.Operations).
func (c *OperationsClient) PID() *actor.PID { return c.pid }

// Operation returns an operation's progress; CodeNotFound when unknown or expired.
func (c *OperationsClient) Operation(ctx context.Context, id string) (Operation, error) {
	res, err := ask(c.sys, c.pid, ctx, getOperation{ID: id}, timeoutOf(ctx), "the operations table")
	if err != nil {
		return Operation{}, err
	}
	rep, ok := res.(reply)
	if !ok {
		return Operation{}, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	if rep.err != nil {
		return Operation{}, rep.err
	}
	return rep.v.(Operation), nil
}
