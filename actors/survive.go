package actors

import (
	"log/slog"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"
)

// survivePanic is deferred by the Receive of an actor that must not restart (a restart
// would drop the state it owns: every upstream, every session, the token table): it
// catches a panic, logs it as a bug of who with its stack, and answers the sender, if any,
// with an internal error. It must be deferred directly (defer survivePanic(...)), since
// recover works only there.
func survivePanic(ctx actor.Context, log *slog.Logger, who string) {
	if p := recover(); p != nil {
		log.Error(who+" bug", "panic", p, "stack", string(debug.Stack()))
		if ctx.Sender() != nil {
			ctx.Respond(reply{err: Errorf(CodeInternal, "internal error")})
		}
	}
}
