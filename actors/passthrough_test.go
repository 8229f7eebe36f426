package actors

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcpproxy/mcpproxy/config"
)

// TestPassthroughTarget: a ready server's target has its references expanded, its isolation
// fixed and the running config's timeout; quarantined, disabled and unknown servers are
// refused like a tool call; PassthroughGen does not need readiness and changes when a config
// change replaces the server's actor.
func TestPassthroughTarget(t *testing.T) {
	t.Setenv("MCPPROXY_PT_TEST", "from-env")
	fx := fixtureServer(t, "fx", false)
	fx.Env = map[string]string{"TOKEN": "${env:MCPPROXY_PT_TEST}"}
	q := fixtureServer(t, "q", true)
	off := fixtureServer(t, "off", false)
	off.Enabled = boolPtr(false)
	cfg := &config.Config{Servers: []config.ServerConfig{fx, q, off}, CallToolTimeout: config.Duration(7e9)}
	h := startRegistry(t, cfg)
	h.waitState(t, "fx", StateReady)
	h.waitState(t, "q", StateReady)

	target, err := h.c.PassthroughTarget(ctxT(t), "fx")
	if err != nil {
		t.Fatal(err)
	}
	if target.Config.Env["TOKEN"] != "from-env" || target.Config.Command != fx.Command {
		t.Errorf("config = %+v, want the reference expanded", target.Config)
	}
	if target.Config.Isolation == nil || target.Config.Isolation.Enabled {
		t.Errorf("isolation = %+v, want fixed to disabled", target.Config.Isolation)
	}
	if target.Timeout.Seconds() != 7 || target.Gen == 0 {
		t.Errorf("timeout %s gen %d", target.Timeout, target.Gen)
	}
	// The target carries the Scrubber of its resolved values, and printing it (as
	// protoactor prints an undelivered reply) shows none of them.
	if got := target.Dial.Scrub.Scrub("token from-env"); got != "token "+config.Redacted {
		t.Errorf("the target's scrubber left %q", got)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("dead letter", "message", passthroughTargetReply{Target: target})
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("dead letter", "message", passthroughTargetReply{Target: target})
	if printed := logged.String() + fmt.Sprintf("%v %+v", target, passthroughTargetReply{Target: target}); strings.Contains(printed, "from-env") {
		t.Errorf("a printed target shows a resolved value: %s", printed)
	}
	// The target is a copy: the registry's row keeps its reference.
	target.Config.Env["TOKEN"] = "changed"
	again, err := h.c.PassthroughTarget(ctxT(t), "fx")
	if err != nil || again.Config.Env["TOKEN"] != "from-env" {
		t.Errorf("second target %+v %v", again.Config.Env, err)
	}

	for _, tc := range []struct {
		name string
		code Code
	}{{"q", CodeConflict}, {"off", CodeConflict}, {"nope", CodeNotFound}} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			if _, err := h.c.PassthroughTarget(ctxT(t), tc.name); ErrorCode(err) != tc.code {
				t.Errorf("target: %v, want %s", err, tc.code)
			}
			if _, err := h.c.PassthroughGen(ctxT(t), tc.name); ErrorCode(err) != tc.code {
				t.Errorf("gen: %v, want %s", err, tc.code)
			}
		})
	}

	gen, err := h.c.PassthroughGen(ctxT(t), "fx")
	if err != nil || gen != target.Gen {
		t.Fatalf("gen = %d %v, want %d", gen, err, target.Gen)
	}
	changed := fx
	changed.Env = map[string]string{"TOKEN": "new"}
	if _, err := h.c.Apply(ctxT(t), &config.Config{Servers: []config.ServerConfig{changed, q, off}}, "api"); err != nil {
		t.Fatal(err)
	}
	h.waitState(t, "fx", StateReady)
	if gen, err := h.c.PassthroughGen(ctxT(t), "fx"); err != nil || gen == target.Gen {
		t.Errorf("gen after a config change = %d %v, want a new one", gen, err)
	}
}
