// Package actors is mcpproxy's core: a registry actor that owns the server table, one
// supervised upstream actor per enabled server, a hub actor that fans domain events out to
// /events subscribers, and a sessions actor that owns the MCP sessions, with one
// passthrough session actor per agent session on /mcp/server/{name}. The HTTP and MCP
// layers talk to them only through Client, HubClient and SessionsClient, typed APIs whose
// every ask is bounded by the caller's context.
//
// # Who owns what
//
//   - registry (registry.go, apply.go): the config as it is in the file (cfg) and as it runs
//     (eff, normalised), one row per configured server (flags, last reported status, the
//     upstream's latest tool list), the search index (actors/search; a server that is not ready but meant to be is hidden
//     in it, not removed), the restart queue of bulk
//     restarts and the window that paces them (registry_restart.go), the count of connects in the
//     current burst, whose end compacts the search index and hands the burst's garbage back to
//     the system (registry_settle.go),
//     and the config saver
//     goroutine that writes the file in order and answers the request that caused each write
//     once it is durable (writes that queue up meanwhile are folded into one of the newest
//     config); the events of a message that wrote the config,
//     and all events after them, go to the hub only once that write is durable (flushTurn),
//     after its answer. Durable means on disk in the file, except for a change of flags alone
//     (enable, disable, quarantine, a tool's switch, bulk enable/disable): that is durable
//     once the whole new file is a synced record in the store (config.Pending, one WAL sync
//     instead of the file's two journal commits), and the file is written right after; the
//     next start replays a record a crash left onto the file it was made against
//     (cmd/mcpproxy/daemon replayPendingConfig). It is the only place that changes server
//     flags. It owns the tool pins of tool-level trust too (trust.go): the approved
//     definition and hash of each tool, loaded from the store at start and written by the
//     saver goroutine (pins first, then the config, in one ordered queue), so an approval is
//     answered once it is on disk; from them it decides which tools are held back (changed
//     or new), which stay out of the index, which call_tool refuses, and which rules the
//     passthrough sessions get. It owns the aggregated prompts and resources too
//     (catalog.go): each row's latest catalog (prompts, resources, templates, as its upstream
//     actor reported it) and the URI map (which servers list each resource URI and template),
//     from which it names URIs for agents (their own, or mcpproxy://<server>/<uri> when
//     several servers list one) and routes prompts/get, resources/read,
//     completion/complete and subscriptions with call_tool's rules. It must never panic: a restarting parent stops all its children, so Receive
//     recovers a bug, logs it and answers INTERNAL. No message about one server costs time
//     in proportion to the number of servers (a tear-down of n would be O(n^2)): the
//     registry keeps indices as rows change (child pid to row, status counts, running
//     children, config positions, restart-queue members) and the search index removes a
//     server in the time of its own tools. Its mailbox has priorities: requests overtake the
//     children's status reports, so a burst of reports from thousands of failing servers
//     does not hold up GET /api/v1/status. The mailbox runs on a goroutine that lingers a
//     second for its next run (warmDispatcher, dispatcher.go), whose stack has already grown,
//     rather than a new goroutine for each run. At most RegistryOptions.StartConcurrency (128)
//     upstream actors are in their first connect at once; the others wait, connecting.
//   - upstream actor (upstream_actor.go), a child of the registry named "up-<server>-<gen>": the
//     live connection (actors/upstream.Conn: the mcp-go client and, for stdio, the process
//     group), the state machine (connecting, ready, error, backoff) and the backoff timer.
//     Dialing, listing tools and calling tools with progress run in goroutines that report
//     back with generation-tagged messages; stale results are dropped and their connections
//     closed; each listing reuses the last one's tools whose bytes are unchanged
//     (upstreamActor.listed, the slice the registry's row holds too). A call without
//     progress is answered with a lease of the ready connection (callLease) and made on
//     the caller's goroutine (Client.CallTool); the actor still owns the connection and
//     closes it.
//     Stopping closes the connection synchronously (bounded, about 1.5 s) so that when the
//     registry sees the actor terminated, its processes are gone. It also learns the
//     server's catalog (prompts, resources, templates; only what its capabilities advertise)
//     at connect and on their list_changed, and owns the agents' resource subscriptions on
//     its connection (upstream_catalog.go): one upstream subscribe per URI, each agent's
//     ResourceSink by session, renewed after a reconnect, dropped on quarantine or when the
//     sink says its session is gone.
//   - secrets in text: references are resolved (config.ServerConfig.Resolve) in the connect
//     goroutine, and the Scrubber that comes with the resolved config goes into the dial
//     options, so the connection (actors/upstream) scrubs its own errors, stderr excerpts and
//     transport log lines, and the upstream actor scrubs last_error, its log fields and call
//     errors again with it; the passthrough target carries it too. A resolved value is never
//     stored, published, logged or answered.
//   - stdio processes: one guard process per daemon (actors/upstream/guard: mcpproxy-guard
//     next to the daemon's binary, else this binary again) starts every stdio upstream, each
//     in its own process group, and is a child subreaper, so every orphan below it is
//     reparented to it, whatever its group or session (setsid); it reaps them, and tells
//     whose they are by MCPPROXY_UPSTREAM_ID, which it sets in each server's environment.
//     A server's processes are ended (SIGTERM, SIGKILL 300 ms later, until none is left)
//     when Close asks the guard to stop it (the group's SIGKILL is only the fallback), when
//     the server's process exits, and when the daemon dies, even by kill -9 (Pdeathsig gives
//     the guard SIGTERM and it ends everything below it); only then is the end reported. The
//     guard's side in the daemon (guard.Warden) starts it with the first stdio server and
//     closes it when none is left: no descendant of a stdio server outlives its stop, a
//     restart or the daemon, and an idle daemon runs no guard.
//   - OAuth logins (oauth_actor.go): the oauth actor, a child of the registry spawned on the
//     first login, owns the logins in progress (state -> PKCE verifier, client, 10-minute
//     expiry; each state is accepted once) and the step-up counts. Discovery, registration,
//     the code exchange and revocation run in its goroutines (actors/oauth). Tokens are
//     owned by the store (sealed like secrets under "oa/tok/<server>", bound to the URL);
//     a connection's oauth.Transport reads them on every request (from the store's
//     in-memory copy of the oa/ records, which its writes keep true: no disk read per
//     request) and refreshes them, so a login or logout needs no hand-over: the registry
//     restarts the server's connection.
//     An http/sse server that answers 401 (or 403 insufficient_scope) with no usable token
//     goes to needs_auth: no backoff timer, until a login, logout, restart or config change.
//     A server whose oauth grant needs no user (client_credentials, or id_jag: the ID token
//     exchanged at the identity provider for an ID-JAG, presented as a JWT bearer grant) is
//     never given a login: entering needs_auth, the registry asks the oauth actor for the
//     grant (grantSelf, at most three a minute per server; a change of a secret the server
//     uses starts the count over), which resolves the config then, so the ID token is the
//     secret's current value; a failure goes to the server's log. Such a server's token
//     (no refresh token) is renewed before it expires, not after the 401: the connection's
//     oauth.Transport calls its Regrant hook (regrantHook), which asks the registry
//     (renewGrant), which asks the oauth actor (grantSelf with Renew: the same grant and
//     budget, no restart); the request waits for the answer (at most 30 s) and goes out
//     with the token then in the store, or, on a failure, with the old one.
//   - server edits (edit.go): POST, PATCH and DELETE /api/v1/servers and the import are one
//     registry message, editServer, which applies the current config with that entry added,
//     merged (RFC 7386) or dropped through the same diff-apply (applyNext) as a config apply,
//     in one turn: unchanged servers keep their processes. A removal is answered once the
//     server's actor has terminated (its processes gone) and the file is saved (row.gone).
//   - server logs (logs.go): the logs actor, a child of the registry named "logs", owns a
//     ring per server (1,000 lines, 256 KiB) of its stderr and the daemon's messages about
//     it, and the followers of GET .../logs?follow=true. Stdio stderr arrives from the
//     connection's drain goroutine (upstream.Options.OnStderr, whole lines scrubbed by the
//     connection's Scrubber); the upstream actor sends its own (connecting, connected,
//     failed with the retry delay, restart, stopped) scrubbed like last_error. The rings
//     outlive upstream actors and are dropped when the registry removes the row. A follower
//     that lags is sent a count of the lines it missed; the actor never blocks on it.
//   - hub (hub.go, hub_subscription.go): event ids, the recent event log (in the store) and
//     the subscribers (whether each is pending or live, and the drop of one that does not
//     read). It holds no HTTP: each subscriber comes with the EventStreams that hold its
//     stream (its own connection, taken off net/http, in http/events_conn.go; or, for a
//     connection that cannot be taken over, the r3labs server of http/events.go), which
//     write the streams to the clients, and the hub only queues events there without
//     blocking. The MCP endpoints subscribe
//     too (http/mcpserver/direct.go), with an EventStreams that keeps no event, only that
//     the set of tools may have changed, to rebuild the tools /mcp/all lists and the
//     prompts and resources /mcp and /mcp/all list (http/mcpserver/catalog.go).
//   - sessions actor (sessions.go, sessions_passthrough.go, sessions_store.go, client
//     sessions_client.go), named "sessions": the MCP session table of both endpoints (ids,
//     client info, counters, last activity, requests in flight), the idle timeout, and the
//     records in the store, which a writer goroutine reads and writes in order, off the
//     mailbox. It is the parent of the passthrough session actors and owns what concerns
//     them together: the bound per server and eviction, and the registry's revocations
//     (sessions_passthrough.go). See Passthrough sessions. Like the
//     registry, its Receive recovers a bug; a session actor that fails is stopped, not
//     restarted, since a restart would dial again behind the agent's back.
//   - passthrough session actor (actors/passthrough), a child of the sessions actor: one
//     agent session on /mcp/server/{name} with its own upstream connection (for stdio, its
//     own process), the id mapping of its requests in flight, the routing of what the
//     upstream sends (notifications, sampling, elicitation, roots) to the agent's streams,
//     and the backlog for the next GET stream. Like the upstream actor, its Stopping closes
//     the connection synchronously, so when the sessions actor sees it terminated, its
//     process is gone.
//   - tokens actor (tokens_actor.go, tokens.go, client TokensClient), named "tokens": the
//     agent tokens (name, scope, times; only the SHA-256 of each token, in the store under
//     tk/), the expiry timer (one time.AfterFunc for the next token to expire, which ends it
//     and has the sessions actor close its sessions: no request has to notice) and the
//     last-used times, kept in memory and written in one synced batch at most every
//     TokensOptions.FlushEvery (30 s) and when it stops, so a request costs no store write.
//     Verification compares the presented token's digest with every stored one in constant
//     time. A token's scope (tokenScope, an actors.Scope) never changes, so it travels in
//     Caller and in messages and is read from other actors: the registry filters
//     searchTools and listServers and refuses callTool outside it (before anything else, so
//     a token learns nothing beyond it); the sessions actor refuses a passthrough open
//     outside it and hands the session actor a visibility predicate that filters tools/list
//     and refuses tools/call. Every session records the credential it was opened with and
//     answers only it (credentialMismatch); closeCredential, from the tokens actor on a
//     revocation (forwarded with the requester as sender, who is answered once the sessions
//     are closed) or an expiry, closes them at once.
//   - activity actor (actors/activity), named "activity": the activity log, a record of
//     every tool call agents make through both MCP endpoints. It hands out the ids, queues
//     the records and feeds its writer goroutine, which scrubs the arguments (the store's
//     secret values, and the server's own resolved values on the passthrough), caps them,
//     writes synced batches, applies max_records and max_age, publishes activity.recorded
//     to the hub, and answers the listings in order after the writes queued before them.
//     /mcp's call_tool and /mcp/all's tools (http/mcpserver activity.go), their prompts/get
//     and resources/read (catalog.go) and the passthrough session actors
//     (actors/passthrough activity.go, where a request and its answer are matched) only
//     send it a Record; the caller's credential comes from Caller, the client from the
//     session. The registry marks its refusals (Error.Refusal) so the record can say why.
//   - metrics (package actors/metrics): counters and histograms of client_golang, counted where
//     things happen (calls through the activity actor, HTTP requests, the upstream actors'
//     restarts, reconnects and backoff through RegistryOptions.Observer); what an actor
//     owns (server states, the hub's counters) is asked for at scrape time.
//   - operations actor (operations.go), named "operations": the progress of bulk operations
//     (each server pending, ready, failed or skipped) and their bounded history (the last
//     100, none older than an hour). The registry starts each operation (opStart) in the
//     turn it acts and sends opServerState for every change of a row after that, directly
//     rather than through the hub, so no change is missed; the actor publishes
//     operation.progress and operation.done to the hub.
//   - store (actors/store): pebble, opened once by the daemon and closed last.
//   - secrets service (secrets.go): values live in the store (sealed there); who uses a
//     secret is the registry's answer (config.Config.SecretUsers over its cfg), and a change
//     restarts every enabled user in one registry turn (restartSecretUsers), except a ready
//     server that reads it only at its next grant (config.ServerConfig.SecretAtGrantOnly:
//     the id_jag ID token).
//   - diagnostics (diagnostics.go): Client.Diagnostics gathers the registry's servers in
//     error, the hub's counters, the store's size and the runtime's figures; it owns nothing.
//   - how a server is started (config.Config.Prepared): the registry fixes the isolation in
//     force into the server's own config when it spawns an actor or prepares a passthrough
//     target, so the Docker wrapper (actors/upstream docker.go) reads only that config.
//
// # Messages
//
// registry: listServers, getServer, getStatus, setEnabled, setQuarantined, restartServer,
// bulkOp (with a Selection; it starts the operation at the operations actor), getOperation
// (forwarded to the operations actor with the caller as sender), getServerTools, approveTools, setToolDisabled, searchTools, callTool (forwarded to the upstream actor with the
// caller as sender, so the upstream answers the caller directly and
// many calls to one upstream run at once), listCatalog, catalogRequest, subscribeRequest and
// unsubscribeRequest (catalog.go; the last three forwarded to the upstream actor with the
// caller as sender, like callTool), dropSubscriber (an agent session ended; sent on to
// the upstream actors it subscribed through), getPassthroughTarget and checkPassthrough (see
// Passthrough sessions), getConfig, applyConfig, getSecretUsers, restartSecretUsers,
// shutdownAll, editServer (edit.go), getLogs and followLogs (checked, then forwarded to
// the logs actor with the caller as sender), startLogin, stopLogin and completeLogin (forwarded to the oauth actor with
// the caller as sender), renewGrant (from a connection's Regrant hook: forwarded to the
// oauth actor as grantSelf with the hook as sender), authUpdated (from the oauth actor:
// restart the server's connection); from its children upstreamStatus and *actor.Terminated. Each request gets
// exactly one reply. It sends the sessions actor RevokePassthrough, and PassthroughTools
// whenever a server's pins, held-back tools or disabled_tools change.
//
// oauth actor: beginLogin, endLogin, completeLogin, grantSelf (from the registry: with a
// sender, a renewal that is answered), resetSelfGrants; internal loginReady, grantSelfDone.
//
// logs actor: appendLogs (from upstream actors and their stderr goroutines), getLogs,
// followLogs, unfollowLogs (a follower's Stop), dropLogs (from the registry when a row is
// removed; closes its followers).
//
// Children's upstreamStatus reports have a lower mailbox priority than requests (see
// upstreamStatus.GetPriority), and so have the registry's messages to itself, stopChildren
// and finishStops, which stop children and finish their stops (after *actor.Terminated,
// a system message that protoactor delivers before any request) 128 at a time, so that
// tearing down 10,000 servers leaves requests their turn. recountStatus is for tests.
//
// operations actor: opStart and opServerState from the registry, getOperation.
//
// tokens actor: createToken, listTokens, revokeToken (forwarded to the sessions actor as
// closeCredential with the caller as sender), verifyToken (the digest, never the token);
// internal tokensExpiryDue and tokensFlushDue. It sends the sessions actor closeCredential.
//
// sessions actor: for mcp-go's sessions (/mcp) newSession, setClient, bindCredential, countCall,
// beginRequest and endRequest (around every request), sessionLive, terminate,
// registerPurge; PassthroughTools from the registry (kept per server for the sessions it
// opens later, and handed to the open ones as passthrough.SetRules); for passthrough sessions openPassthrough (answered when the session has
// opened or failed), abandonOpen, passthroughPost and passthroughListen (forwarded to the
// session actor with the caller as sender), passthroughEnd, deletePassthrough (answered
// once the session's connection is closed), countPassthrough; RevokePassthrough from the
// registry; closeCredential from the tokens actor; listSessions and getSession (answered
// by the writer goroutine after the writes queued before), closeAllSessions (shutdown),
// awaitServerGone (answered once no passthrough session of a removed server has a
// connection); internal targetReady and sessionsTick; from
// its children passthrough.Opened, OpenFailed and Lost, and *actor.Terminated.
//
// passthrough session actor: Post, Listen, Done, SetRules and Close from the sessions actor; internal
// openDone, callDone, notified, fromUpstream, upstreamAsk, askGone, connLost (see the
// package doc of actors/passthrough).
//
// activity actor: Record (from the endpoints and the passthrough sessions), list and get
// (Client.List, Client.Get), configure (an apply changed the activity section); internal
// jobDone (the writer is free) and ageTick (apply max_age).
//
// upstream actor: restartUpstream, reconnectUpstream, callUpstreamTool (with the call's
// ProgressSink when the agent asked for progress: the actor swaps in a token of its own,
// routes the connection's notifications/progress to the sink as progressNotified messages,
// and answers the call through progressCallDone after them, progress.go), authChanged and
// authRead (OAuth status, upstream_auth.go), setMessageLimit
// (from the registry when an apply changes max_message_bytes; used by the next
// connection); catalogCall, subscribeResource, unsubscribeResource, dropSubscriber and clearSubscriptions
// (from the registry, upstream_catalog.go); internal connectDone, connLost, retryDue,
// toolsChanged, toolsListed, catalogChanged, catalogListed, resourceUpdated, subscribed.
// notifications/prompts/list_changed and notifications/resources/list_changed are
// coalesced like the tools' below (a doorbell, one re-list in flight, one queued).
// notifications/tools/list_changed is coalesced twice: the connection's notification
// handler rings a doorbell that leaves at most one toolsChanged in the mailbox, and the
// actor runs at most one re-list at a time with at most one queued behind it, so a server
// that floods notifications costs a few lists, and the last list taken follows the last
// notification.
//
// hub: Event (from the registry: servers.changed, tools.indexed, config.reloaded; from the
// activity actor: activity.recorded; the hub
// encodes their payloads, off the registry's goroutine);
// subscribe (from GET /events; answered with a Subscription: its replay and a context that
// ends when the hub drops it), subscriberReady (HubClient.SubscriberReady, once the replay
// is written, or from r3labs' OnSubscribe) and unsubscribed (Subscription.End, from the stream handler), getHubStats,
// keepaliveTick.
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
// are refused before anything reaches the upstream. Within an approved server, each tool is
// pinned (trust.go): a tool that changed since its approval or is new is held back the same
// way, one tool at a time, and so is a tool in disabled_tools.
//
// # Passthrough sessions
//
// /mcp/server/{name} must let an agent use one upstream as if it were connected directly,
// and much of MCP is about the connection, not the server: the capabilities the client
// declared in initialize (servers offer tools, such as sampling ones, only to capable
// clients), the logging level, resource subscriptions, and the requests a server sends to
// its client (sampling/createMessage, elicitation/create, roots/list), which on stdio carry
// nothing that says which of several clients they are for. So each agent session on that
// endpoint gets a connection of its own, owned by an actor of its own, and the upstream
// actor's shared connection (used by /mcp's call_tool, listing and indexing) is left alone.
// The rooms, in the order a session meets them:
//
//   - http/mcpserver/passthrough.go: the streamable-HTTP framing only. It parses the body,
//     answers what the transport refuses (400, 405, 413, the API key), and hands each
//     response stream to the session as a passthrough.Stream, a queue the session fills and
//     the handler writes (events, or JSON for a client that takes only JSON).
//   - sessions actor, openPassthrough: it asks the registry for the target
//     (Client.PassthroughTarget, getPassthroughTarget, in a goroutine): the server must be
//     reachable as for callTool (known, enabled, not quarantined, ready); the registry
//     returns its config prepared as spawn prepares it (isolation fixed; references
//     expanded in a goroutine, which sends the reply, because secrets are read from the
//     store), the daemon's dial options, call_tool_timeout and its generation (Gen). Then a
//     slot: sessions per server are bounded (SessionsOptions.PassthroughSessions, default
//     32); past that the least recently active idle one is closed to make room (its slot is
//     free once its process is gone), and when all are busy the open is refused (503), so
//     agents that never DELETE cannot pile up processes. Then it spawns the session actor.
//   - passthrough session actor (actors/passthrough): it dials with upstream.DialRaw in a
//     goroutine and sends the agent's own initialize, so the upstream sees the agent's
//     capabilities and client info; a stdio upstream is a process per session, started in
//     its own process group like the shared one. JSON-RPC passes raw in both directions, so
//     schemas and unknown fields are untouched. Agent requests go upstream under ids of the
//     connection's own, each from a goroutine that reports callDone; server-to-client
//     requests come in as upstreamAsk from the connection's goroutine, which waits (at most
//     call_tool_timeout) for the agent's answer, routed back by id.
//   - The registry's verdicts arrive by push, not by polling: when a server is quarantined,
//     disabled, removed or reconfigured, the registry sends RevokePassthrough to the sessions
//     actor before it answers the request that caused it. Every passthrough request passes
//     through the sessions actor, so none reaches a revoked session after that answer: the
//     session is closed at once (connection and all), a session still opening is refused,
//     and the agent's next request is told why (then it gets 404 and initializes again,
//     which fails or uses the new config). A restart of the shared connection leaves
//     sessions be: they do not depend on it.
//   - A session's connection is closed with the session: the agent's DELETE (answered once
//     the connection is closed), the idle timeout, the connection's own loss, eviction,
//     revocation, or shutdown (Endpoint.Close asks closeAllSessions, answered once every
//     session's connection is closed and every record written).
//
// The session actors are children of the sessions actor rather than of the registry or the
// upstream actor because every request of a session must be accounted for anyway (idle
// timeout, eviction, /api/v1/sessions), and the sessions actor does that for /mcp too: as
// children of the registry they would add a registry message per request (the registry was
// asked on every request before, to check the generation), and the ordering above would
// need the registry to know every session.
//
// A tools/call through /mcp/server/{name} takes: one ask from the handler to the sessions
// actor, which accounts for it and forwards it to the session actor, which answers the
// handler (Accepted) and starts the upstream call in a goroutine; the call's answer comes
// back to the session actor as callDone and goes into the handler's Stream; and one
// one-way passthroughEnd when the handler is done. The registry is not asked at all.
//
// The cost is a process (or remote session) per agent session rather than per server; the
// alternative, sharing one connection and guessing which agent a server-to-client request
// is for, cannot declare per-agent capabilities at all. Docker-isolated servers get a
// container per session, named after the server and the session's number.
//
// # Scaling out
//
// Messages are plain values, so the actors could move to protoactor's cluster later without
// changing their contracts, except for what only makes sense in one process: the
// ProgressSink a /mcp call carries and the ResourceSink of a subscription (an agent's
// session), the dial options with their Docker hooks in a
// passthrough target, the hub's subscriptions, and, between the MCP transport and the
// sessions actor, the channel beginRequest answers with (closed when the session closes),
// the purge function of registerPurge, and the passthrough.Stream each response is written
// from.
package actors
