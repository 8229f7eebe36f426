// Package actors is mcpproxy's core: a registry actor that owns the server table, one
// supervised upstream actor per enabled server, and a hub actor that fans domain events out to
// /events subscribers. The HTTP and MCP layers talk to them only through Client, a typed ask
// API whose every call is bounded by the caller's context.
//
// # Who owns what
//
//   - registry (registry.go, apply.go): the config as it is in the file (cfg) and as it runs
//     (eff, normalised), one row per configured server (flags, last reported status, the
//     upstream's latest tool list), the search index (actors/search), the restart queue of bulk
//     restarts, and the config saver goroutine that writes the file in order and answers the
//     request that caused each write once it is on disk (writes that queue up meanwhile are
//     folded into one of the newest config). It is the only place that changes server
//     flags. It must never panic: a restarting parent stops all its children, so Receive
//     recovers a bug, logs it and answers INTERNAL. No message about one server costs time
//     in proportion to the number of servers (a tear-down of n would be O(n^2)): the
//     registry keeps indices as rows change (child pid to row, status counts, running
//     children, config positions, restart-queue members) and the search index removes a
//     server in the time of its own tools. Its mailbox has priorities: requests overtake the
//     children's status reports, so a burst of reports from thousands of failing servers
//     does not hold up GET /api/v1/status. At most RegistryOptions.StartConcurrency (128)
//     upstream actors are in their first connect at once; the others wait, connecting.
//   - upstream actor (upstream_actor.go), a child of the registry named "up-<server>-<gen>": the
//     live connection (actors/upstream.Conn: the mcp-go client and, for stdio, the process
//     group), the state machine (connecting, ready, error, backoff) and the backoff timer.
//     Dialing, listing tools and calling tools run in goroutines that report back with
//     generation-tagged messages; stale results are dropped and their connections closed.
//     Stopping closes the connection synchronously (bounded, about 1.5 s) so that when the
//     registry sees the actor terminated, its processes are gone.
//   - stdio processes: each stdio upstream runs under a guard process (actors/upstream
//     guard.go: this binary again) that leads its own process group. Close kills the group;
//     when the daemon dies, even by kill -9, Pdeathsig gives the guard SIGTERM and it kills
//     the group, so grandchildren of wrappers like npx do not outlive the daemon.
//   - hub (hub.go): event ids, the recent event log (in the store) and the subscribers.
//   - store (actors/store): pebble, opened once by the daemon and closed last.
//
// # Messages
//
// registry: listServers, getServer, getStatus, setEnabled, setQuarantined, restartServer,
// bulkOp, getServerTools, searchTools, callTool and getUpstreamConn (forwarded to the
// upstream actor with the caller as sender, so the upstream answers the caller directly and
// many calls to one upstream run at once), getPassthroughTarget and checkPassthrough (see
// Passthrough sessions), getConfig, applyConfig, shutdownAll; from its children
// upstreamStatus and *actor.Terminated. Each request gets exactly one reply.
//
// Children's upstreamStatus reports have a lower mailbox priority than requests (see
// upstreamStatus.GetPriority), and so have the registry's messages to itself, stopChildren
// and finishStops, which stop children and finish their stops (after *actor.Terminated,
// a system message that protoactor delivers before any request) 128 at a time, so that
// tearing down 10,000 servers leaves requests their turn. recountStatus is for tests.
//
// upstream actor: restartUpstream, reconnectUpstream, callUpstreamTool, withUpstreamConn;
// internal connectDone, connLost, retryDue, toolsChanged, toolsListed.
//
// hub: Event (from the registry: servers.changed, tools.indexed, config.reloaded; the hub
// encodes their payloads, off the registry's goroutine);
// subscribe (from GET /events; answered with a Subscription), subscriberReady and
// unsubscribed (from r3labs' callbacks and the stream handler), getHubStats, keepaliveTick.
// Events are recorded in the store by a writer goroutine in synced batches, off the mailbox.
//
// # Life cycle
//
// disabled -> connecting -> ready; a failure goes to error and at once to backoff, whose
// timer (about 1 s, doubling with ±20% jitter up to 5 min) returns to connecting. A stdio
// upstream fails when its process exits; a remote one when its event stream breaks or a
// health ping (every 30 s while ready) fails. restart
// drops the connection and resets the backoff; reconnect connects now when not ready;
// disable stops the actor (stopping -> disabled). Quarantine is a flag: a quarantined server
// stays connected so its tools can be reviewed, but they are kept out of the index and calls
// are refused before anything reaches the upstream.
//
// # Passthrough sessions
//
// /mcp/server/{name} must let an agent use one upstream as if it were connected directly,
// and much of MCP is about the connection, not the server: the capabilities the client
// declared in initialize (servers offer tools, such as sampling ones, only to capable
// clients), the logging level, resource subscriptions, and the requests a server sends to
// its client (sampling/createMessage, elicitation/create, roots/list), which on stdio carry
// nothing that says which of several clients they are for. So each agent session on that
// endpoint gets a connection of its own, and the upstream actor's shared connection (used by
// /mcp's call_tool, listing and indexing) is left alone:
//
//   - getPassthroughTarget (Client.PassthroughTarget): for a reachable server (as for
//     callTool: known, enabled, not quarantined, ready), the registry returns its config,
//     prepared as spawn prepares it (isolation fixed; references expanded in a goroutine,
//     which sends the reply, because secrets are read from the store), the daemon's dial
//     options, call_tool_timeout and the row's childGen.
//   - The endpoint dials with upstream.DialRaw and sends the agent's own initialize, so the
//     upstream sees the agent's capabilities and client info; a stdio upstream is a process
//     per session, started in its own process group like the shared one. JSON-RPC passes
//     raw in both directions, so schemas and unknown fields are untouched.
//   - checkPassthrough (Client.PassthroughGen), on every agent request and once a second
//     for every server with sessions: a session whose server was removed, disabled or
//     quarantined, or whose childGen changed (a config change respawned the actor), is
//     closed, its connection with it; the agent gets 404 and initializes again, which then
//     fails or uses the new config. A restart of the shared connection leaves sessions be.
//   - A session's connection is closed with the session: the agent's DELETE, the idle
//     timeout, the connection's own loss, eviction, or shutdown (which waits for them).
//     Sessions per server are bounded (mcpserver.Options.PassthroughSessions, default 32);
//     past that the least recently active idle one is closed to make room, so agents that
//     never DELETE cannot pile up processes.
//
// The cost is a process (or remote session) per agent session rather than per server; the
// alternative, sharing one connection and guessing which agent a server-to-client request
// is for, cannot declare per-agent capabilities at all. Docker-isolated servers get a
// container per session, named after the server and the session's number.
//
// # Scaling out
//
// Messages are plain values (no channels or functions cross actor boundaries except the
// upstream connection handed to /mcp for progress and the dial options, with their Docker
// hooks, handed to the passthrough endpoint), so the actors could move to protoactor's
// cluster later without changing their contracts.
package actors
