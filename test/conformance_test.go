package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
)

// The official MCP conformance suite in server mode (npm @modelcontextprotocol/conformance,
// pinned in package.json with the Node it needs), and the Go SDK's conformance server,
// built from the Go module proxy (it is not a dependency of this module).
const (
	conformanceServerPkg = "github.com/modelcontextprotocol/go-sdk/conformance/everything-server@v1.8.0"
	// The active suite of conformance 0.1.16 against that server: every scenario passes.
	conformanceWantPassed = 40
)

// TestConformance runs the suite against the Go SDK's conformance server directly (its
// stateful streamable HTTP mode) and through /mcp/server/{name} with the server as a stdio
// upstream of the daemon: both must pass every check, scenario by scenario alike.
func TestConformance(t *testing.T) {
	bin := buildConformanceServer(t)
	suite := conformanceCLI(t)

	var direct *conformanceResult
	t.Run("direct", func(t *testing.T) {
		direct = runConformance(t, suite, startConformanceServer(t, bin))
		checkConformance(t, direct, nil)
	})
	if direct == nil {
		t.FailNow()
	}
	t.Run("through the proxy", func(t *testing.T) {
		// Registered first, so it runs after the proxy has stopped: no server process
		// (the shared one and one per session) outlives the daemon.
		t.Cleanup(func() {
			waitFor(t, 10*time.Second, "the conformance servers to exit", func() bool { return len(processesWithArg(bin)) == 0 })
		})
		p := startProxy(t, servers(map[string]any{"name": "conformance", "command": bin, "quarantined": false}))
		p.waitState("conformance", 30*time.Second, actors.StateReady)
		start := time.Now()
		got := runConformance(t, suite, p.URL+"/mcp/server/conformance?apikey="+p.Key)
		t.Logf("suite through the proxy: %d passed, %d failed in %s", got.passed, got.failed, time.Since(start).Round(time.Millisecond))
		checkConformance(t, got, direct)
	})
}

// conformanceResult is the suite's summary: totals and each scenario's line.
type conformanceResult struct {
	passed, failed int
	scenarios      map[string]string // name -> "N passed, M failed"
	output         string
}

var (
	totalRE    = regexp.MustCompile(`(?m)^Total: (\d+) passed, (\d+) failed`)
	scenarioRE = regexp.MustCompile(`(?m)^[✓✗] ([a-z0-9-]+): (\d+ passed, \d+ failed)`)
)

func checkConformance(t *testing.T, got, want *conformanceResult) {
	t.Helper()
	if got.passed != conformanceWantPassed || got.failed != 0 {
		t.Errorf("conformance: %d passed, %d failed; want %d passed, 0 failed\n%s", got.passed, got.failed, conformanceWantPassed, got.output)
	}
	if want == nil {
		return
	}
	for name, line := range want.scenarios {
		if got.scenarios[name] != line {
			t.Errorf("scenario %s: %q through the proxy, %q directly", name, got.scenarios[name], line)
		}
	}
	if len(got.scenarios) != len(want.scenarios) {
		t.Errorf("%d scenarios through the proxy, %d directly", len(got.scenarios), len(want.scenarios))
	}
}

// conformanceCLI returns the suite's command, which test/node_modules provides.
func conformanceCLI(t *testing.T) string {
	t.Helper()
	cli := filepath.Join(repoRoot(), "test", "node_modules", ".bin", "conformance")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the conformance suite is not installed (run npm ci in test/): %v", err)
	}
	return cli
}

// runConformance runs the active server suite against url. The suite writes result files
// into its working directory, a temporary one here. Node comes from test/node_modules
// (the suite needs Node 22).
func runConformance(t *testing.T, cli, url string) *conformanceResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "server", "--url", url)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(cli)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	res := &conformanceResult{scenarios: map[string]string{}, output: string(out)}
	m := totalRE.FindStringSubmatch(res.output)
	if m == nil {
		t.Fatalf("the conformance suite printed no summary (%v):\n%s", err, out)
	}
	res.passed, _ = strconv.Atoi(m[1])
	res.failed, _ = strconv.Atoi(m[2])
	for _, s := range scenarioRE.FindAllStringSubmatch(res.output, -1) {
		res.scenarios[s[1]] = s[2]
	}
	return res
}

// buildConformanceServer installs the Go SDK's conformance server into a temporary GOBIN,
// outside this module (go install pkg@version needs no go.mod entry).
func buildConformanceServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found: %v", err)
	}
	gobin := t.TempDir()
	cmd := exec.Command(goBin, "install", conformanceServerPkg)
	cmd.Dir = gobin
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", conformanceServerPkg, err, out)
	}
	return filepath.Join(gobin, "everything-server")
}

// startConformanceServer runs the server in its stateful streamable HTTP mode on a free
// port and returns its URL once it accepts connections.
func startConformanceServer(t *testing.T, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "-http", addr, "-stateless=false")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitFor(t, 20*time.Second, "the conformance server to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	return fmt.Sprintf("http://%s/mcp", strings.TrimSpace(addr))
}
