// Package upstream dials one upstream MCP server with mark3labs/mcp-go: a stdio child process,
// a streamable-HTTP remote, or a legacy HTTP+SSE remote. It owns the details the upstream actor
// should not care about: the child's process group and minimal environment, bounded reads
// (Options.MaxMessageBytes: a stdio line, an HTTP body, an SSE event), and telling the caller
// when the connection is gone.
//
// # Usage
//
//	conn, err := upstream.Dial(ctx, serverConfig, upstream.Options{OnNotification: f})
//	tools, err := conn.Client.ListTools(ctx, mcp.ListToolsRequest{})
//	<-conn.Done()  // closed when the process exits or the stream breaks
//	conn.Close()   // closes the client and ends every process the server started
//
// # Concurrency
//
// A Conn may be used from many goroutines: mcp-go's client is safe for concurrent calls.
// Close may be called more than once and from any goroutine.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/oauth"
	"github.com/mcpproxy/mcpproxy/actors/upstream/guard"
	"github.com/mcpproxy/mcpproxy/config"
)

// Options tune Dial. The zero value is usable; defaults are given per field.
type Options struct {
	// Logger receives transport logs. Default: a logger that discards everything.
	Logger *slog.Logger
	// ClientName and ClientVersion are sent in initialize. ClientName defaults to
	// "mcpproxy"; ClientVersion is the daemon's version (daemon.Options.Version, which is
	// the one place that defaults it), sent as given.
	ClientName, ClientVersion string
	// OnNotification is called on the transport's read loop for every notification; it must
	// not block (send a message and return).
	OnNotification func(mcp.JSONRPCNotification)
	// MaxMessageBytes bounds one message from the upstream: a JSON-RPC line from a stdio
	// child, an HTTP response body (answers and error bodies), one event of an SSE stream
	// (the stream itself is endless by nature). mcp-go reads all of these without a limit, so
	// a hostile or broken server could otherwise grow our memory without end. Past it the
	// connection is dropped and Err (or Dial's error) matches ErrMessageTooLarge. Default
	// config.DefaultMaxMessageBytes (16 MiB): far more than any tool list or call result we
	// have met, and small enough that a few upstreams failing at once cost tens of MiB. The
	// daemon sets the config's max_message_bytes.
	MaxMessageBytes int
	// InitTimeout bounds start plus initialize. Default 30 s.
	InitTimeout time.Duration
	// DiscoverTimeout bounds mcp-go's probe for the 2026 protocol before it falls back to the
	// initialize handshake (servers that ignore unknown methods otherwise cost 5 s). Default 1 s.
	DiscoverTimeout time.Duration
	// ProtocolVersion pins the MCP revision spoken to the upstream. Default
	// mcp.ProtocolVersion20251125: every server we met speaks it, it skips mcp-go's probe
	// for the 2026 revision (up to DiscoverTimeout on servers that ignore unknown methods),
	// and mcp-go's calls on it cost about half the CPU of 2026-07-28 ones (measured over
	// streamable HTTP: 158 us against 300 us per call). "latest" lets mcp-go negotiate.
	ProtocolVersion string
	// Capabilities are declared to the upstream. Default: none beyond mcp-go's.
	Capabilities *mcp.ClientCapabilities
	// ClientOptions are added to the mcp-go client (sampling, roots, elicitation handlers).
	ClientOptions []client.ClientOption
	// CommandWrapper, when set, rewrites a stdio server's command line before it starts
	// (Docker isolation uses it).
	CommandWrapper func(cfg config.ServerConfig, env []string) (command string, args []string, childEnv []string)
	// AfterClose, when set, runs at the end of a stdio connection's Close, after its process
	// group is gone (Docker isolation removes the container there).
	AfterClose func(cfg config.ServerConfig)
	// Scrub holds the server's secrets (config.ServerConfig.Resolve makes it): they are
	// taken out of every error, stderr excerpt and transport log line of the connection,
	// together with the credentials of its URL. Default: the URL's credentials only.
	Scrub *config.Scrubber
	// Tokens, for an http or sse server, are its OAuth tokens: sent as a bearer token on
	// every request, refreshed before expiry and on a 401 (see auth.go). Nil: none.
	Tokens oauth.TokenStore
	// Regrant, with Tokens, renews the tokens of a self-granting server before they
	// expire (oauth.Transport.Regrant). Nil: they are renewed after a 401 only.
	Regrant func(ctx context.Context) error
	// OnAuthChange is called (it must not block) when the tokens were refreshed or the
	// server asked for a login.
	OnAuthChange func()
	// OnStderr, when set, is called (it must not block) with the complete lines a stdio
	// child wrote to stderr, scrubbed like Stderr, each read's lines at once. A line
	// longer than 4 KiB is passed in pieces.
	OnStderr func(lines []string)
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ClientName == "" {
		o.ClientName = "mcpproxy"
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = config.DefaultMaxMessageBytes
	}
	if o.InitTimeout <= 0 {
		o.InitTimeout = 30 * time.Second
	}
	if o.DiscoverTimeout <= 0 {
		o.DiscoverTimeout = time.Second
	}
	if o.ProtocolVersion == "" {
		o.ProtocolVersion = mcp.ProtocolVersion20251125
	}
}

// Conn is one live connection to an upstream.
type Conn struct {
	Client *client.Client
	// Init is the upstream's answer to initialize (server info, capabilities, protocol).
	Init *mcp.InitializeResult
	// PID is the stdio child's process id (also its process group id); 0 for remotes.
	PID int

	cancel    context.CancelFunc
	done      chan struct{}
	doneOnce  sync.Once
	err       error
	closeOnce sync.Once
	proc      *guard.Process // the stdio child, run by the guard
	exited    chan struct{}  // closed when the stdio child has been reaped
	stderr    *ring
	scrub     *config.Scrubber // applied to err and Stderr as they are made
	after     func()
	http      *http.Client // remote upstreams: closed with the connection
	auth      *oauth.Transport
}

// Done is closed when the connection is lost: the child exited, its stdout broke, or the
// remote stream ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why Done was closed.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stderr returns the last lines the child wrote to stderr (at most a few KiB), for error
// messages, scrubbed of the server's secrets.
func (c *Conn) Stderr() string {
	if c.stderr == nil {
		return ""
	}
	return c.stderr.excerpt(c.scrub.Scrub)
}

func (c *Conn) lost(err error) {
	c.doneOnce.Do(func() {
		c.err = c.scrub.Err(err)
		close(c.done)
	})
}

// Close ends the connection and, for stdio, makes sure the server's processes are gone before
// it returns: stdin is closed first (well-behaved servers exit at once), then the guard is
// asked to end every process of the server (package guard), then SIGKILL to the group. It
// takes at most about 1.5 s.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.lost(errors.New("connection closed"))
		if c.Client != nil {
			_ = c.Client.Close()
		}
		if c.cancel != nil {
			c.cancel()
		}
		if c.proc != nil {
			killGroup(c.proc, c.exited)
		}
		if c.after != nil {
			c.after()
		}
		if c.http != nil {
			c.http.CloseIdleConnections()
		}
	})
	return nil
}

// killGroup stops the server's process p and the process group it leads. exited is closed
// once the guard has reported p's end.
func killGroup(p *guard.Process, exited <-chan struct{}) {
	pid := p.PID
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-exited:
			return true
		case <-t.C:
			return false
		}
	}
	if !wait(300 * time.Millisecond) {
		// The guard ends every process of the server, in the group or not, and reports
		// once they are gone. The group's SIGKILL is the fallback for a stuck guard.
		p.Stop()
		if !wait(700 * time.Millisecond) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			wait(500 * time.Millisecond)
		}
	}
	// Grandchildren (npx, shell wrappers) may outlive the leader; the group id stays theirs.
	if syscall.Kill(-pid, syscall.SIGKILL) == nil {
		// Something was still there. SIGKILL takes effect when the process next runs, so
		// wait, briefly, for the group to empty: Close's caller (a DELETE's answer) must
		// find no process of the server alive.
		waitGroupGone(pid, 500*time.Millisecond)
	}
}

// waitGroupGone polls until process group pgid has no member or d has passed. There is
// no event for a group becoming empty (a pidfd follows one process), hence the poll; it
// runs only after a group kill found something left. An unreaped zombie of the group keeps
// it for the whole of d.
func waitGroupGone(pgid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for syscall.Kill(-pgid, 0) != syscall.ESRCH && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// Dial connects to the upstream described by cfg (already normalised, references expanded)
// and performs the MCP initialize handshake. The connection lives until Close, independent of
// ctx, which only bounds the dial. Its errors are scrubbed with opts.Scrub.
func Dial(ctx context.Context, cfg config.ServerConfig, opts Options) (*Conn, error) {
	scrub := opts.prepare(cfg)
	conn, err := dial(ctx, cfg, opts)
	return conn, scrub.Err(err)
}

func dial(ctx context.Context, cfg config.ServerConfig, opts Options) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		// Given up before it began: start no process.
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	conn := &Conn{cancel: cancel, done: make(chan struct{}), scrub: opts.Scrub}
	var err error
	switch cfg.Protocol {
	case "stdio", "":
		err = conn.startStdio(life, cfg, opts)
	case "http":
		err = conn.startHTTP(life, cfg, opts)
	case "sse":
		err = conn.startSSE(ctx, life, cfg, opts)
	default:
		err = fmt.Errorf("unknown protocol %q", cfg.Protocol)
	}
	if err != nil {
		conn.Close()
		return nil, conn.authErr(err)
	}
	ictx, icancel := context.WithTimeout(ctx, opts.InitTimeout)
	defer icancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: opts.ClientName, Version: opts.ClientVersion}
	if opts.Capabilities != nil {
		req.Params.Capabilities = *opts.Capabilities
	}
	type initDone struct {
		res *mcp.InitializeResult
		err error
	}
	ch := make(chan initDone, 1)
	go func() {
		res, err := conn.Client.Initialize(ictx, req)
		ch <- initDone{res, err}
	}()
	select {
	case d := <-ch:
		if d.err != nil {
			err := fmt.Errorf("initialize: %w", d.err)
			if lost := conn.Err(); errors.Is(lost, ErrMessageTooLarge) {
				// The limiter marked the connection lost before mcp-go saw the read fail;
				// its reason is the clear one (mcp-go's may quote the partial body).
				err = lost
			}
			if tail := conn.Stderr(); tail != "" {
				err = fmt.Errorf("%w (stderr: %s)", err, tail)
			}
			conn.Close()
			return nil, conn.authErr(err)
		}
		conn.Init = d.res
	case <-conn.done:
		err := conn.err
		if tail := conn.Stderr(); tail != "" {
			err = fmt.Errorf("%w (stderr: %s)", err, tail)
		}
		conn.Close()
		return nil, conn.authErr(err)
	}
	if mcp.IsModernProtocol(conn.Client.ProtocolVersion()) && cfg.Protocol != "stdio" {
		// Modern streamable HTTP delivers list_changed only on a listen stream.
		_, _ = conn.Client.ListenAsync(life, mcp.SubscriptionFilter{ToolsListChanged: true}, nil)
	}
	return conn, nil
}

func (c *Conn) clientOptions(opts Options) []client.ClientOption {
	o := []client.ClientOption{client.WithDiscoverTimeout(opts.DiscoverTimeout)}
	if opts.ProtocolVersion != "latest" {
		o = append(o, client.WithProtocolVersion(opts.ProtocolVersion))
	}
	return append(o, opts.ClientOptions...)
}

func (c *Conn) startStdio(life context.Context, cfg config.ServerConfig, opts Options) error {
	out, stdin, err := c.spawn(cfg, opts)
	if err != nil {
		return err
	}
	tr := transport.NewIO(out, stdin, nil)
	c.Client = client.NewClient(tr, c.clientOptions(opts)...)
	if opts.OnNotification != nil {
		c.Client.OnNotification(opts.OnNotification)
	}
	return c.Client.Start(life)
}

// spawn starts a stdio server in its own process group and returns its stdout, bounded per
// line by opts.MaxMessageBytes, and its stdin. The connection is lost when the process exits.
func (c *Conn) spawn(cfg config.ServerConfig, opts Options) (io.Reader, io.WriteCloser, error) {
	command, args, env := cfg.Command, cfg.Args, ChildEnv(cfg.Env)
	if opts.CommandWrapper != nil {
		command, args, env = opts.CommandWrapper(cfg, env)
	}
	if opts.AfterClose != nil {
		c.after = func() { opts.AfterClose(cfg) }
	}
	path, err := LookPath(command, cfg.WorkingDir, envPath(env))
	if err != nil {
		return nil, nil, err
	}
	// Three pipes: the child's ends go to the guard, which starts the server with them.
	// stderr is drained with a small buffer: os/exec would copy through 32 KiB per child,
	// which adds up over a hundred upstreams.
	var pipes [3][2]*os.File // stdin, stdout, stderr: [child's end, ours]
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			for _, p := range pipes[:i] {
				p[0].Close()
				p[1].Close()
			}
			return nil, nil, err
		}
		if i == 0 {
			pipes[i] = [2]*os.File{r, w}
		} else {
			pipes[i] = [2]*os.File{w, r}
		}
	}
	proc, err := warden().Start(path, append([]string{command}, args...), env, cfg.WorkingDir,
		pipes[0][0], pipes[1][0], pipes[2][0])
	// The read end of the child's stdin stays open here until the process has exited, as
	// the guard's own did when there was one per server: a server that dies at once then
	// fails the dial with its exit status and stderr, not with a broken pipe on the
	// initialize write that raced its exit.
	stdinR := pipes[0][0]
	pipes[1][0].Close()
	pipes[2][0].Close()
	if err != nil {
		stdinR.Close()
		for _, p := range pipes {
			p[1].Close()
		}
		return nil, nil, fmt.Errorf("start %s: %w", command, err)
	}
	stdin, stdout, errR := pipes[0][1], pipes[1][1], pipes[2][1]
	c.stderr = newRing(4 << 10)
	drained := make(chan struct{})
	var sink io.Writer = c.stderr
	if opts.OnStderr != nil {
		sink = io.MultiWriter(c.stderr, &lineSink{scrub: c.scrub.Scrub, out: opts.OnStderr})
	}
	go func() {
		drain(errR, sink)
		errR.Close()
		close(drained)
	}()
	c.proc, c.PID = proc, proc.PID
	c.exited = make(chan struct{})
	go func() {
		err := proc.Err()
		if err == nil {
			err = errors.New("process exited")
		} else {
			err = fmt.Errorf("process exited: %w", err)
		}
		// As exec.Cmd.Wait does: once the process has exited, our ends of its pipes are
		// closed, so that a descendant holding them open cannot keep the reader waiting.
		stdout.Close()
		stdinR.Close()
		// What the process wrote to stderr last explains its exit, so the loss waits for
		// the drain to reach the end of the pipe; briefly, because a descendant may still
		// hold the pipe open.
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-drained:
		case <-t.C:
			errR.Close()
		}
		t.Stop()
		c.lost(err)
		close(c.exited)
	}()
	exited := c.exited
	out := newLineLimiter(stdout, opts.MaxMessageBytes, func(err error) {
		if !errors.Is(err, ErrMessageTooLarge) {
			// stdout ends because the process is exiting (Wait closes the pipe first): let
			// its exit status ("signal: killed", "exit status 1") be the reason when it
			// comes promptly.
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-exited:
			case <-t.C:
			}
			t.Stop()
		}
		c.lost(err)
		// The guard ends the server's processes, not SIGKILL to the group, which could not
		// reach descendants that left it.
		proc.Stop()
	})
	return out, stdin, nil
}

func (c *Conn) startHTTP(life context.Context, cfg config.ServerConfig, opts Options) error {
	c.http = newHTTPClient(opts.MaxMessageBytes, c.lost)
	c.authorize(cfg, opts)
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(c.http),
		transport.WithHTTPHeaders(cfg.Headers), transport.WithHTTPLogger(opts.Logger)}
	if opts.ProtocolVersion != "latest" && !mcp.IsModernProtocol(opts.ProtocolVersion) {
		// Session-based revisions deliver list_changed only on the standing GET stream.
		topts = append(topts, transport.WithContinuousListening())
	}
	tr, err := transport.NewStreamableHTTP(cfg.URL, topts...)
	if err != nil {
		return err
	}
	c.Client = client.NewClient(tr, c.clientOptions(opts)...)
	if opts.OnNotification != nil {
		c.Client.OnNotification(opts.OnNotification)
	}
	return c.Client.Start(life)
}

func (c *Conn) startSSE(ctx, life context.Context, cfg config.ServerConfig, opts Options) error {
	c.http = newHTTPClient(opts.MaxMessageBytes, c.lost)
	c.authorize(cfg, opts)
	tr, err := transport.NewSSE(cfg.URL, transport.WithHTTPClient(c.http),
		transport.WithHeaders(cfg.Headers), transport.WithSSELogger(opts.Logger))
	if err != nil {
		return err
	}
	tr.SetConnectionLostHandler(func(err error) { c.lost(fmt.Errorf("event stream lost: %w", err)) })
	c.Client = client.NewClient(tr, c.clientOptions(opts)...)
	if opts.OnNotification != nil {
		c.Client.OnNotification(opts.OnNotification)
	}
	// Start waits for the endpoint event; a stream that breaks first (an endpoint line over
	// the limit) must fail the dial now, not when mcp-go's endpoint timeout (30 s) runs out.
	return startBounded(ctx, c, func() error { return c.Client.Start(life) })
}

// newHTTPClient returns the client of one remote upstream. Its own transport keeps enough idle
// connections for concurrent calls (http.DefaultTransport keeps two per host, so parallel
// calls would re-dial), and it has no overall timeout, which would cut long event streams:
// calls are bounded by their contexts instead. Every response body is bounded by
// maxMessage (see limitTransport); over is told when one crosses it.
func newHTTPClient(maxMessage int, over func(error)) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 128
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: &limitTransport{base: t, max: maxMessage, over: over}}
}

// CloseIdleConnections is forwarded to the wrapped transport, so that Conn.Close still
// releases idle sockets through http.Client.CloseIdleConnections.
func (t *limitTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// ChildEnv is the whole environment a stdio child gets: PATH and HOME from the daemon, and the
// variables its config names. Nothing else of the daemon's environment (API keys, tokens)
// reaches an upstream; the guard adds only guard.MarkEnv, a number.
func ChildEnv(configured map[string]string) []string {
	base := map[string]string{}
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			base[k] = v
		}
	}
	for k, v := range configured {
		base[k] = v
	}
	env := make([]string, 0, len(base))
	for k, v := range base {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// LookPath finds command the way a stdio server is started: a name with a slash is a path
// (relative to the server's working dir workDir), a bare name is searched in path (the PATH
// the child gets). Either way it must be an executable file, so that a missing or
// non-executable command gives a clear error before anything starts. The doctor checks
// commands with it too.
func LookPath(command, workDir, path string) (string, error) {
	if strings.Contains(command, "/") {
		p := command
		if !filepath.IsAbs(p) && workDir != "" {
			p = filepath.Join(workDir, p)
		}
		info, err := os.Stat(p)
		switch {
		case err != nil:
			return "", fmt.Errorf("command %q not found", command)
		case info.IsDir() || info.Mode()&0o111 == 0:
			return "", fmt.Errorf("command %q is not an executable file", command)
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, command)
		if info, err := os.Stat(p); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH", command)
}

// envPath is the value of PATH in env (KEY=VALUE pairs; the last one wins, as for exec).
func envPath(env []string) string {
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	return path
}

// drain copies a child's stderr into the ring until the child (and every process that
// inherited the pipe) is gone.
func drain(r *os.File, w io.Writer) {
	defer r.Close()
	buf := make([]byte, 1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// lineSink cuts what a child writes to stderr into lines for Options.OnStderr. Only the
// drain goroutine writes to it. Lines are scrubbed whole, so a secret cannot be split
// between two reads and escape the scrubber.
type lineSink struct {
	scrub   func(string) string
	out     func([]string)
	partial []byte
}

// maxStderrLine is where a line without a newline is passed on anyway.
const maxStderrLine = 4 << 10

func (s *lineSink) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	var lines []string
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			if len(s.partial) < maxStderrLine {
				break
			}
			i = maxStderrLine
		}
		line := strings.TrimRight(string(s.partial[:i]), "\r")
		if i < len(s.partial) && s.partial[i] == '\n' {
			i++
		}
		s.partial = s.partial[i:]
		if strings.TrimSpace(line) != "" {
			lines = append(lines, s.scrub(line))
		}
	}
	if len(s.partial) == 0 {
		s.partial = nil
	}
	if len(lines) > 0 {
		s.out(lines)
	}
	return len(p), nil
}

// ring keeps the last bytes a child wrote to stderr.
type ring struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newRing(max int) *ring { return &ring{max: max} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if over := len(r.buf) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	return len(p), nil
}

// excerpt returns the last line (or the last few hundred bytes) of what the ring holds,
// passed through scrub first, so that the cut cannot split a secret and leave a piece of
// it that scrub would not recognise.
func (r *ring) excerpt(scrub func(string) string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.TrimSpace(scrub(string(r.buf)))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && len(s)-i > 200 {
		s = s[i+1:]
	}
	if len(s) > 500 {
		s = s[len(s)-500:]
	}
	return s
}
