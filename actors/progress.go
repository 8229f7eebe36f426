package actors

import (
	"maps"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"
)

// ProgressSink is where the progress notifications of one forwarded tool call go: the agent
// session that made the call (http/mcpserver implements it over mcp-go's session). The call
// carries it (Client.CallTool), and the upstream actor, which owns the connection the
// notifications arrive on, routes each to its call; no connection leaves the actor.
// Progress is called on the upstream actor's goroutine and must not block; params are the
// notification's, with the agent's own progress token.
type ProgressSink interface {
	Progress(params map[string]any)
}

// progressRoute is the agent side of one call that asked for progress.
type progressRoute struct {
	sink  ProgressSink
	token mcp.ProgressToken
}

// Messages of the progress routing (upstream actor, internal).
type (
	// progressNotified is a notifications/progress from the connection of generation gen.
	progressNotified struct {
		gen    int
		params map[string]any
	}
	// progressCallDone ends a call that asked for progress: the actor drops its route and
	// answers the caller, after every progress notification that arrived before the result
	// (the connection hands them over in order), so the agent sees them before the answer.
	progressCallDone struct {
		key    string
		caller *actor.PID
		reply  callToolReply
	}
)

// routeProgress gives a call that asked for progress a token of the proxy's own, unique on
// this connection, because agents pick their tokens independently and share it. It returns
// the meta to send upstream and the route key ("" when the call asked for none).
func (u *upstreamActor) routeProgress(meta *mcp.Meta, sink ProgressSink) (*mcp.Meta, string) {
	if sink == nil || meta == nil || meta.ProgressToken == nil {
		return meta, ""
	}
	if u.progress == nil {
		u.progress = map[string]progressRoute{}
	}
	u.nextProgress++
	key := "mcpproxy-" + strconv.FormatUint(u.nextProgress, 10)
	u.progress[key] = progressRoute{sink: sink, token: meta.ProgressToken}
	return &mcp.Meta{ProgressToken: key, AdditionalFields: meta.AdditionalFields}, key
}

// onProgress forwards an upstream progress notification to its call's agent, with the
// agent's own token. The notification's _meta is not forwarded: mcp-go's notification to a
// client cannot carry one.
func (u *upstreamActor) onProgress(m progressNotified) {
	if m.gen != u.gen {
		return
	}
	key, _ := m.params["progressToken"].(string)
	r, ok := u.progress[key]
	if !ok {
		return
	}
	params := maps.Clone(m.params)
	params["progressToken"] = r.token
	r.sink.Progress(params)
}
