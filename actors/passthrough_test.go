package actors

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/config"
)

// TestPassthroughTarget: a ready server's target has its references expanded, its isolation
// fixed and the running config's timeout; quarantined, disabled and unknown servers are
// refused like a tool call, and CheckPassthrough says the same without needing readiness.
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
			if err := h.c.CheckPassthrough(ctxT(t), tc.name); ErrorCode(err) != tc.code {
				t.Errorf("check: %v, want %s", err, tc.code)
			}
		})
	}
	if err := h.c.CheckPassthrough(ctxT(t), "fx"); err != nil {
		t.Fatalf("check fx: %v", err)
	}
}

// revocations records the RevokePassthrough messages the registry sends its sessions actor.
type revocations chan RevokePassthrough

func (r revocations) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(RevokePassthrough); ok {
		r <- m
	}
}

// TestPassthroughRevoked: the registry tells the sessions actor, before it answers, that a
// server's passthrough sessions must end when the server is quarantined, disabled,
// reconfigured or removed, naming a generation above every target handed out before and
// at most that of every target handed out after; a restart of the shared connection and
// an unquarantine leave the sessions be.
func TestPassthroughRevoked(t *testing.T) {
	fx := fixtureServer(t, "fx", false)
	other := fixtureServer(t, "other", false)
	rev := make(revocations, 10)
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{fx, other}}, func(h *regHarness, o *RegistryOptions) {
		o.Sessions = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return rev }))
	})
	h.waitState(t, "fx", StateReady)
	h.waitState(t, "other", StateReady)
	none := func(t *testing.T, what string) {
		t.Helper()
		select {
		case m := <-rev:
			t.Fatalf("%s revoked the sessions: %+v", what, m)
		default:
		}
	}
	got := func(t *testing.T, what string, older int, code Code, text string) RevokePassthrough {
		t.Helper()
		select {
		case m := <-rev:
			if m.Server != "fx" || m.Gen <= older || ErrorCode(m.Err) != code || !strings.Contains(m.Err.Error(), text) {
				t.Fatalf("%s: %+v (err %v), want fx above gen %d, %s %q", what, m, m.Err, older, code, text)
			}
			return m
		default:
			t.Fatalf("%s did not revoke the sessions before the answer", what)
			return RevokePassthrough{}
		}
	}
	target := func(t *testing.T) int {
		t.Helper()
		h.waitState(t, "fx", StateReady)
		tg, err := h.c.PassthroughTarget(ctxT(t), "fx")
		if err != nil {
			t.Fatal(err)
		}
		return tg.Gen
	}

	gen := target(t)
	if _, err := h.c.Restart(ctxT(t), "fx"); err != nil {
		t.Fatal(err)
	}
	none(t, "a restart")
	if _, err := h.c.SetQuarantined(ctxT(t), "fx", true); err != nil {
		t.Fatal(err)
	}
	got(t, "quarantine", gen, CodeConflict, "quarantined")
	if _, err := h.c.SetQuarantined(ctxT(t), "fx", false); err != nil {
		t.Fatal(err)
	}
	none(t, "an unquarantine")

	gen = target(t)
	if _, err := h.c.SetEnabled(ctxT(t), "fx", false); err != nil {
		t.Fatal(err)
	}
	got(t, "disable", gen, CodeConflict, "disabled")
	if _, err := h.c.SetEnabled(ctxT(t), "fx", true); err != nil {
		t.Fatal(err)
	}
	none(t, "an enable")

	gen = target(t)
	changed := fx
	changed.Args = append(slices.Clone(fx.Args), "--tools", "1")
	if _, err := h.c.Apply(ctxT(t), &config.Config{Servers: []config.ServerConfig{changed, other}}, "api"); err != nil {
		t.Fatal(err)
	}
	r := got(t, "a config change", gen, CodeNotFound, "reconfigured")
	if after := target(t); after < r.Gen {
		t.Errorf("a target after the revocation has gen %d, below the revocation's %d", after, r.Gen)
	}

	gen = target(t)
	if _, err := h.c.Apply(ctxT(t), &config.Config{Servers: []config.ServerConfig{other}}, "api"); err != nil {
		t.Fatal(err)
	}
	got(t, "a removal", gen, CodeNotFound, "not found")
}
