package upstream

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

func TestRunArgs(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.ServerConfig
		iso  config.Isolation
		want []string
	}{
		{
			name: "no env, default network",
			cfg:  config.ServerConfig{Name: "fs", Command: "npx", Args: []string{"-y", "@scope/server", "/data"}},
			iso:  config.Isolation{Enabled: true, Image: "node:22-slim"},
			want: []string{"run", "-i", "--rm", "--init", "--name", "mcpproxy-fs", "--label", "mcpproxy.server=fs",
				"--network", "none", "node:22-slim", "npx", "-y", "@scope/server", "/data"},
		},
		{
			name: "env by name only, sorted; configured network",
			cfg:  config.ServerConfig{Name: "gh", Command: "server", Env: map[string]string{"TOKEN": "s3cr3t-value", "A_FLAG": "flag-value"}},
			iso:  config.Isolation{Enabled: true, Image: "ghcr.io/x/y:1", Network: "bridge"},
			want: []string{"run", "-i", "--rm", "--init", "--name", "mcpproxy-gh", "--label", "mcpproxy.server=gh",
				"--network", "bridge", "-e", "A_FLAG", "-e", "TOKEN", "ghcr.io/x/y:1", "server"},
		},
		{
			name: "arguments that look like docker options stay after the image",
			cfg:  config.ServerConfig{Name: "x", Command: "python", Args: []string{"--network", "host", "-e", "Z"}},
			iso:  config.Isolation{Enabled: true, Image: "python:3"},
			want: []string{"run", "-i", "--rm", "--init", "--name", "mcpproxy-x", "--label", "mcpproxy.server=x",
				"--network", "none", "python:3", "python", "--network", "host", "-e", "Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RunArgs(tt.cfg, tt.iso)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("RunArgs =\n %q\nwant\n %q", got, tt.want)
			}
			for _, v := range tt.cfg.Env {
				for _, a := range got {
					if strings.Contains(a, v) {
						t.Fatalf("env value %q appears on the command line: %q", v, got)
					}
				}
			}
		})
	}
}

// fakeDocker writes a shell script named docker into a new directory, puts that directory
// first on PATH, and returns the file each invocation appends its arguments to. It is a test
// double for the docker client: no Docker engine runs here.
func fakeDocker(t *testing.T, body string) (logFile string) {
	t.Helper()
	dir := t.TempDir()
	logFile = filepath.Join(dir, "calls.log")
	script := "#!/bin/sh\necho \"$*\" >> '" + logFile + "'\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return logFile
}

func calls(t *testing.T, logFile string) []string {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestWrap(t *testing.T) {
	logFile := fakeDocker(t, "exit 0")
	t.Setenv("DOCKER_HOST", "unix:///tmp/test-docker.sock")
	t.Setenv("UNRELATED_DAEMON_SECRET", "do-not-pass")
	// The registry fixes each server's isolation before it starts (config.Config.Prepared);
	// the wrapper reads only that.
	dk := &Docker{}
	boxed := &config.Isolation{Enabled: true, Image: "img:1"}
	t.Run("not isolated is unchanged", func(t *testing.T) {
		cfg := config.ServerConfig{Name: "plain", Protocol: "stdio", Command: "srv", Args: []string{"a"}, Isolation: &config.Isolation{}}
		env := []string{"HOME=/h", "PATH=/p"}
		cmd, args, childEnv := dk.Wrap(cfg, env)
		if cmd != "srv" || !slices.Equal(args, []string{"a"}) || !slices.Equal(childEnv, env) {
			t.Fatalf("Wrap = %q %q %q", cmd, args, childEnv)
		}
	})
	t.Run("isolated runs docker", func(t *testing.T) {
		cfg := config.ServerConfig{Name: "boxed", Protocol: "stdio", Command: "srv", Env: map[string]string{"TOKEN": "v"}, Isolation: boxed}
		cmd, args, childEnv := dk.Wrap(cfg, []string{"HOME=/h", "PATH=" + os.Getenv("PATH"), "TOKEN=v"})
		if filepath.Base(cmd) != "docker" || !filepath.IsAbs(cmd) {
			t.Fatalf("command = %q, want an absolute path to docker", cmd)
		}
		if !slices.Equal(args, RunArgs(cfg, config.Isolation{Enabled: true, Image: "img:1"})) {
			t.Fatalf("args = %q", args)
		}
		if !slices.Contains(childEnv, "TOKEN=v") || !slices.Contains(childEnv, "DOCKER_HOST=unix:///tmp/test-docker.sock") {
			t.Fatalf("child env %q lacks the server's variable or the docker client setting", childEnv)
		}
		for _, kv := range childEnv {
			if strings.HasPrefix(kv, "UNRELATED_DAEMON_SECRET=") {
				t.Fatalf("daemon variable leaked into the docker client env: %q", childEnv)
			}
		}
		if got := calls(t, logFile); !slices.Contains(got, "rm -f mcpproxy-boxed") {
			t.Fatalf("docker calls %q: want the stale container removed before the start", got)
		}
	})
	t.Run("after stop the container is removed", func(t *testing.T) {
		before := len(calls(t, logFile))
		dk.AfterStop(config.ServerConfig{Name: "plain", Protocol: "stdio", Command: "srv"})
		if got := calls(t, logFile); len(got) != before {
			t.Fatalf("docker ran for a server that is not isolated: %q", got[before:])
		}
		dk.AfterStop(config.ServerConfig{Name: "boxed", Protocol: "stdio", Command: "srv", Isolation: boxed})
		if got := calls(t, logFile); len(got) != before+1 || got[before] != "rm -f mcpproxy-boxed" {
			t.Fatalf("docker calls after stop: %q", got[before:])
		}
	})
	t.Run("remote servers are never isolated", func(t *testing.T) {
		cfg := config.ServerConfig{Name: "boxed", Protocol: "http", URL: "http://127.0.0.1:1/mcp", Isolation: boxed}
		if dk.IsolationFor(cfg) != nil {
			t.Fatal("an http server was isolated")
		}
	})
}

func TestDockerStatus(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		available bool
		version   string
		errPart   string
	}{
		{
			name:      "engine answers",
			script:    `echo '{"Client":{"Version":"28.2.2"},"Server":{"Version":"28.2.1"}}'`,
			available: true, version: "28.2.1",
		},
		{
			name: "client without engine",
			script: `echo '{"Client":{"Version":"28.2.2"},"Server":null}'
echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2
exit 1`,
			errPart: "Cannot connect to the Docker daemon",
		},
		{
			name:    "engine hangs",
			script:  `exec sleep 30`,
			errPart: "did not answer within",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeDocker(t, tt.script)
			dk := &Docker{ProbeTimeout: 300 * time.Millisecond}
			start := time.Now()
			st := dk.Status(context.Background())
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("Status took %s; the probe must be bounded", took)
			}
			if st.Available != tt.available || st.Version != tt.version || !strings.Contains(st.Error, tt.errPart) {
				t.Fatalf("Status = %+v", st)
			}
			if tt.available && st.Error != "" {
				t.Fatalf("available with error %q", st.Error)
			}
		})
	}
	t.Run("missing client", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		st := (&Docker{}).Status(context.Background())
		if st.Available || !strings.Contains(st.Error, "not found") {
			t.Fatalf("Status = %+v", st)
		}
	})
}

func TestDockerStatusCachedAndShared(t *testing.T) {
	logFile := fakeDocker(t, `echo '{"Client":{"Version":"1"},"Server":{"Version":"2"}}'`)
	dk := &Docker{CacheFor: time.Minute}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st := dk.Status(context.Background()); !st.Available {
				t.Errorf("Status = %+v", st)
			}
		}()
	}
	wg.Wait()
	dk.Status(context.Background())
	if n := len(calls(t, logFile)); n != 1 {
		t.Fatalf("docker ran %d times, want 1 (cached and shared)", n)
	}
}

func TestDockerStatusCallerDeadline(t *testing.T) {
	fakeDocker(t, `exec sleep 30`)
	dk := &Docker{ProbeTimeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if st := dk.Status(ctx); st.Available || st.Error == "" {
		t.Fatalf("Status = %+v", st)
	}
	// Wait blocks until the probe has finished, then the result is cached for the next caller.
	dk.Wait(context.Background())
	dk.mu.Lock()
	running := dk.inflight != nil
	dk.mu.Unlock()
	if running {
		t.Fatal("a probe is still running after Wait")
	}
	if st := dk.Status(context.Background()); st.Available || !strings.Contains(st.Error, "did not answer") {
		t.Fatalf("second Status = %+v", st)
	}
}
