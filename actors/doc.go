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
//     request that caused each write once it is on disk. It is the only place that changes
//     server flags. It must never panic: a restarting parent stops all its children, so
//     Receive recovers a bug, logs it and answers INTERNAL.
//   - upstream actor (upstream_actor.go), a child of the registry named "up-<server>-<gen>": the
//     live connection (actors/upstream.Conn: the mcp-go client and, for stdio, the process
//     group), the state machine (connecting, ready, error, backoff) and the backoff timer.
//     Dialing, listing tools and calling tools run in goroutines that report back with
//     generation-tagged messages; stale results are dropped and their connections closed.
//     Stopping closes the connection synchronously (bounded, about 1.5 s) so that when the
//     registry sees the actor terminated, its processes are gone.
//   - secrets in text: references are resolved (config.ServerConfig.Resolve) in the connect
//     goroutine, and the Scrubber that comes with the resolved config goes into the dial
//     options, so the connection (actors/upstream) scrubs its own errors, stderr excerpts and
//     transport log lines, and the upstream actor scrubs last_error, its log fields and call
//     errors again with it; the passthrough target carries it too. A resolved value is never
//     stored, published, logged or answered.
//   - stdio processes: each stdio upstream runs under a guard process (actors/upstream
//     guard.go: this binary again) that leads its own process group and is a child
//     subreaper, so every orphan below it is reparented to it, whatever its group or session
//     (setsid). It reaps them while it runs and, before it exits, ends every descendant it
//     has (SIGTERM, SIGKILL 300 ms later, until it has no child left). It stops when the
//     server's process exits, when Close sends it SIGTERM (the group's SIGKILL is only the
//     fallback), and when the daemon dies, even by kill -9 (Pdeathsig gives it SIGTERM): no
//     descendant of a stdio server outlives its stop, a restart or the daemon.
//   - OAuth logins (oauth_actor.go): the oauth actor, a child of the registry spawned on the
//     first login, owns the logins in progress (state -> PKCE verifier, client, 10-minute
//     expiry; each state is accepted once) and the step-up counts. Discovery, registration,
//     the code exchange and revocation run in its goroutines (actors/oauth). Tokens are
//     owned by the store (sealed like secrets under "oa/tok/<server>", bound to the URL);
//     a connection's oauth.Transport reads them on every request and refreshes them, so a
//     login or logout needs no hand-over: the registry restarts the server's connection.
//     An http/sse server that answers 401 (or 403 insufficient_scope) with no usable token
//     goes to needs_auth: no backoff timer, until a login, logout, restart or config change.
//   - hub (hub.go): event ids, the recent event log (in the store) and the subscribers.
//   - store (actors/store): pebble, opened once by the daemon and closed last.
//
// # Messages
//
// registry: listServers, getServer, getStatus, setEnabled, setQuarantined, restartServer,
// bulkOp, getServerTools, searchTools, callTool and getUpstreamConn (forwarded to the
// upstream actor with the caller as sender, so the upstream answers the caller directly and
// many calls to one upstream run at once), getPassthroughTarget and checkPassthrough (see
// Passthrough sessions), getConfig, applyConfig, shutdownAll, startLogin, stopLogin and
// completeLogin (forwarded to the oauth actor with the caller as sender), authUpdated (from
// the oauth actor: restart the server's connection); from its children upstreamStatus and
// *actor.Terminated. Each request gets exactly one reply.
//
// oauth actor: beginLogin, endLogin, completeLogin; internal loginReady.
//
// upstream actor: restartUpstream, reconnectUpstream, callUpstreamTool, withUpstreamConn,
// authChanged and authRead (OAuth status, upstream_auth.go),
// setMessageLimit (from the registry when an apply changes max_message_bytes; used by the
// next connection); internal connectDone, connLost, retryDue, toolsChanged, toolsListed.
// notifications/tools/list_changed is coalesced twice: the connection's notification
// handler rings a doorbell that leaves at most one toolsChanged in the mailbox, and the
// actor runs at most one re-list at a time with at most one queued behind it, so a server
// that floods notifications costs a few lists, and the last list taken follows the last
// notification.
//
// hub: Event (from the registry: servers.changed, tools.indexed, config.reloaded);
// subscribe (from GET /events; answered with a Subscription), subscriberReady and
// unsubscribed (from r3labs' callbacks and the stream handler), getHubStats, keepaliveTick.
// Events are recorded in the store by a writer goroutine in synced batches, off the mailbox.
//
// # Life cycle
//
// disabled -> connecting -> ready (or needs_auth, see OAuth logins); a failure goes to error and at once to backoff, whose
// timer (about 1 s, doubling with ±20% jitter up to 5 min) returns to connecting. A stdio
// upstream fails when its process exits; a remote one when its event stream breaks or a
// health ping (every 30 s while ready) fails; any upstream, quarantined or not, when one
// message it sends (a stdio line, an HTTP body, an SSE event) exceeds max_message_bytes
// (actors/upstream: ErrMessageTooLarge, "answer exceeded max_message_bytes (N)"), which
// bounds what an upstream can make the daemon hold. restart
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
