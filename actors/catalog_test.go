package actors

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// chanSink is the agent side of a subscription in these tests: the URIs it was told of.
type chanSink struct {
	mu   sync.Mutex
	uris []string
}

func (s *chanSink) Updated(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uris = append(s.uris, uri)
	return true
}

func (s *chanSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uris)
}

// TestRegistryCatalogRoutes checks the URI map against two fixtures with a catalog: a URI
// both list is namespaced for each and routed to each, a unique one keeps its URI, a
// template URI is routed to the one server whose template matches, and a URI nobody
// lists is not found; a quarantined server's catalog is not listed and refused.
func TestRegistryCatalogRoutes(t *testing.T) {
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{
		fixtureServer(t, "fa", false, "--catalog"), fixtureServer(t, "fb", false, "--catalog")}})
	h.waitState(t, "fa", StateReady)
	h.waitState(t, "fb", StateReady)
	v, err := h.c.Catalog(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range v.Resources {
		uris = append(uris, r.Key)
	}
	for _, want := range []string{"fixture://fa/info", NamespacedURI("fa", "fixture://shared/status"), NamespacedURI("fb", "fixture://shared/status")} {
		if !slices.Contains(uris, want) {
			t.Errorf("resources lack %s: %v", want, uris)
		}
	}
	for uri, server := range map[string]string{
		NamespacedURI("fb", "fixture://shared/status"): "fb",
		"fixture://fa/info":                            "fa",
		"fixture://fb/items/12":                        "fb",
	} {
		_, got, _, err := h.c.CatalogCall(ctxT(t), CatalogRequest{Method: "resources/read", URI: uri})
		if err != nil || got != server {
			t.Errorf("read %s went to %q (%v), want %s", uri, got, err, server)
		}
	}
	for _, uri := range []string{"fixture://shared/status", "fixture://nobody/x"} {
		if _, _, _, err := h.c.CatalogCall(ctxT(t), CatalogRequest{Method: "resources/read", URI: uri}); ErrorCode(err) != CodeNotFound {
			t.Errorf("read %s: %v, want NOT_FOUND", uri, err)
		}
	}
	if _, err := h.c.SetQuarantined(ctxT(t), "fb", true); err != nil {
		t.Fatal(err)
	}
	v, _ = h.c.Catalog(ctxT(t))
	for _, p := range v.Prompts {
		if p.Server == "fb" {
			t.Errorf("a quarantined server's prompt listed: %+v", p)
		}
	}
	if _, _, _, err := h.c.CatalogCall(ctxT(t), CatalogRequest{Method: "prompts/get", Server: "fb", Prompt: "greet"}); ErrorCode(err) != CodeConflict {
		t.Errorf("prompts/get of a quarantined server: %v, want CONFLICT", err)
	}
}

// TestRegistryCatalogSubscriptions checks that one upstream subscription serves several
// agent sessions and that a session that ended (DropSubscriber) is told nothing more,
// while the others still are.
func TestRegistryCatalogSubscriptions(t *testing.T) {
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{fixtureServer(t, "fa", false, "--catalog")}})
	h.waitState(t, "fa", StateReady)
	const uri = "fixture://shared/status"
	a, b := &chanSink{}, &chanSink{}
	if err := h.c.SubscribeResource(ctxT(t), uri, "session-a", a); err != nil {
		t.Fatal(err)
	}
	if err := h.c.SubscribeResource(ctxT(t), uri, "session-b", b); err != nil {
		t.Fatal(err)
	}
	h.call(t, "fa:touch_resource", map[string]any{"uri": uri})
	waitUpdated := func(s *chanSink, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for len(s.got()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no update %d (got %v)", n, s.got())
			}
			<-tick.C
		}
	}
	waitUpdated(a, 1)
	waitUpdated(b, 1)
	h.c.DropSubscriber("session-a")
	h.call(t, "fa:touch_resource", map[string]any{"uri": uri})
	waitUpdated(b, 2)
	// Both sinks are told in one turn of the upstream actor, so a is told by now if ever.
	if got := a.got(); len(got) != 1 || got[0] != uri {
		t.Errorf("the dropped session was told %v", got)
	}
}
