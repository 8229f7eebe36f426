package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
)

// toolsPage is GET /api/v1/tools decoded.
type toolsPage struct {
	Tools []actors.ToolHit `json:"tools"`
	Total int              `json:"total"`
}

// searchHTTP runs GET /api/v1/tools with the given query string and fails on a non-200.
func (p *proxy) searchHTTP(query string) toolsPage {
	p.t.Helper()
	var page toolsPage
	if code, body := p.do("GET", "/api/v1/tools"+query, nil, &page); code != 200 {
		p.t.Fatalf("GET /api/v1/tools%s: %d %s", query, code, body)
	}
	return page
}

func hitNames(hits []actors.ToolHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.Name
	}
	return out
}

func (p *proxy) toolsTotal() int {
	p.t.Helper()
	var st struct {
		Tools actors.StatusTools `json:"tools"`
	}
	if code, body := p.do("GET", "/api/v1/status", nil, &st); code != 200 {
		p.t.Fatalf("status: %d %s", code, body)
	}
	return st.Tools.Total
}

// TestToolSearchHTTP searches through the daemon with real upstreams (stdio with synthetic
// tools, streamable HTTP, a quarantined and a disabled server): the response shape, ranking
// order, limits, the blank query, and that only reachable servers' tools appear.
func TestToolSearchHTTP(t *testing.T) {
	httpURL, _ := startFixtureHTTP(t, "http")
	quarantined := stdioFixture(t, "q")
	delete(quarantined, "quarantined") // not saying "quarantined": false means quarantined
	off := stdioFixture(t, "off")
	off["enabled"] = false
	p := startProxy(t, servers(
		stdioFixture(t, "a", "--tools", "30"),
		map[string]any{"name": "b", "url": httpURL, "quarantined": false},
		quarantined, off,
	))
	a := p.waitState("a", 20*time.Second, actors.StateReady)
	b := p.waitState("b", 20*time.Second, actors.StateReady)
	if q := p.waitState("q", 20*time.Second, actors.StateReady); !q.Quarantined || q.ToolsCount == 0 {
		t.Fatalf("q = %+v, want quarantined with its tools listed for review", q)
	}
	reachable := a.ToolsCount + b.ToolsCount
	waitFor(t, 10*time.Second, "index to hold a and b", func() bool { return p.toolsTotal() == reachable })

	t.Run("shape", func(t *testing.T) {
		code, body := p.do("GET", "/api/v1/tools?q="+url.QueryEscape("export invoices as csv"), nil, nil)
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		if len(raw) != 2 || raw["tools"] == nil || raw["total"] == nil {
			t.Fatalf("top level keys: %s", body)
		}
		var tools []map[string]json.RawMessage
		if err := json.Unmarshal(raw["tools"], &tools); err != nil || len(tools) == 0 {
			t.Fatalf("tools: %v %s", err, body)
		}
		for _, tool := range tools {
			for _, k := range []string{"name", "server", "description", "input_schema", "score", "matched"} {
				if _, ok := tool[k]; !ok {
					t.Errorf("tool lacks %q: %v", k, tool)
				}
			}
			for k := range tool {
				if !slices.Contains([]string{"name", "server", "description", "input_schema", "annotations", "score", "matched"}, k) {
					t.Errorf("tool has unexpected field %q", k)
				}
			}
			var name, server string
			_ = json.Unmarshal(tool["name"], &name)
			_ = json.Unmarshal(tool["server"], &server)
			if !strings.HasPrefix(name, server+":") {
				t.Errorf("name %q is not server:tool for server %q", name, server)
			}
			var schema map[string]any
			if err := json.Unmarshal(tool["input_schema"], &schema); err != nil || schema["type"] != "object" {
				t.Errorf("%s: input_schema %s", name, tool["input_schema"])
			}
			// Each hit says which of its fields the query matched.
			var matched []string
			if err := json.Unmarshal(tool["matched"], &matched); err != nil || len(matched) == 0 {
				t.Errorf("%s: matched %s, want the fields the query matched", name, tool["matched"])
			}
		}
		// A synthetic tool with a title annotation keeps it.
		page := p.searchHTTP("?q=" + url.QueryEscape("export invoices as csv"))
		if top := page.Tools[0]; !strings.HasPrefix(top.Name, "a:synthetic_") || !strings.Contains(string(top.Annotations), "title") {
			t.Errorf("top hit %s annotations %s, want a synthetic export tool with its title", top.Name, top.Annotations)
		}
	})

	t.Run("best first", func(t *testing.T) {
		page := p.searchHTTP("?q=echo&limit=50")
		if len(page.Tools) < 2 || page.Total != reachable {
			t.Fatalf("echo: %d hits, total %d (want total %d)", len(page.Tools), page.Total, reachable)
		}
		top := hitNames(page.Tools[:2])
		sort.Strings(top)
		if fmt.Sprint(top) != "[a:echo b:echo]" {
			t.Errorf("echo: top two %v, want a:echo and b:echo", hitNames(page.Tools))
		}
		for i := 1; i < len(page.Tools); i++ {
			if page.Tools[i].Score > page.Tools[i-1].Score {
				t.Fatalf("scores not descending at %d: %v > %v", i, page.Tools[i].Score, page.Tools[i-1].Score)
			}
		}
		if page.Tools[0].Score <= 0 {
			t.Errorf("top score %v", page.Tools[0].Score)
		}
	})

	t.Run("limits", func(t *testing.T) {
		if n := len(p.searchHTTP("").Tools); n != 15 {
			t.Errorf("default limit gave %d tools, want 15", n)
		}
		if n := len(p.searchHTTP("?q=entries").Tools); n != 15 {
			t.Errorf("default limit with a query gave %d tools, want 15", n)
		}
		if n := len(p.searchHTTP("?limit=1").Tools); n != 1 {
			t.Errorf("limit=1 gave %d", n)
		}
		if n := len(p.searchHTTP("?limit=1000").Tools); n != reachable {
			t.Errorf("limit=1000 gave %d, want all %d", n, reachable)
		}
		for _, bad := range []string{"0", "1001", "-1", "abc", "1.5", "", "99999999999999999999"} {
			var e struct{ Error, Code string }
			code, body := p.do("GET", "/api/v1/tools?q=echo&limit="+url.QueryEscape(bad), nil, &e)
			if code != 400 || e.Code != "INVALID_ARGUMENT" || e.Error == "" {
				t.Errorf("limit=%q: %d %s, want 400 INVALID_ARGUMENT", bad, code, body)
			}
		}
	})

	t.Run("blank query lists all reachable by name", func(t *testing.T) {
		page := p.searchHTTP("?limit=1000")
		names := hitNames(page.Tools)
		if !slices.IsSorted(names) {
			t.Errorf("not sorted by name: %v", names)
		}
		if len(names) != reachable || page.Total != reachable || p.toolsTotal() != reachable {
			t.Errorf("listed %d, total %d, status tools.total %d; want %d", len(names), page.Total, p.toolsTotal(), reachable)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "a:") && !strings.HasPrefix(n, "b:") {
				t.Errorf("%s listed: only a and b are reachable", n)
			}
		}
	})

	t.Run("quarantined and disabled never appear", func(t *testing.T) {
		for _, q := range []string{"q:echo", "off:echo", "q", "off", "echo"} {
			for _, h := range p.searchHTTP("?limit=1000&q=" + url.QueryEscape(q)).Tools {
				if h.Server == "q" || h.Server == "off" {
					t.Errorf("search %q found %s", q, h.Name)
				}
			}
		}
	})

	t.Run("list_changed over http updates results", func(t *testing.T) {
		s := openSSE(t, p, "/events", keyHeader(p))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := p.D.Client.CallTool(ctx, "b:add_tool", map[string]any{"name": "zebra_frobnicator", "description": "Frobnicate the zebras of a paddock"}, nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		// A new tool of an approved server awaits review; approved, it is indexed.
		waitFor(t, 10*time.Second, "the new tool listed for review", func() bool { return p.server("b").ToolsAwaitingReview == 1 })
		if code, body := p.do("POST", "/api/v1/servers/b/tools/approve", map[string]any{"tools": []string{"zebra_frobnicator"}}, nil); code != 200 {
			t.Fatalf("approve: %d %s", code, body)
		}
		s.waitEvents(10*time.Second, "tools.indexed for b", func(evs []sseEvent) bool {
			for _, e := range evs {
				var d struct {
					Total, ServerTools int
					Server             string
				}
				var raw map[string]any
				if e.Name != "tools.indexed" || json.Unmarshal([]byte(e.Data), &raw) != nil {
					continue
				}
				d.Server, _ = raw["server"].(string)
				if f, ok := raw["server_tools"].(float64); ok {
					d.ServerTools = int(f)
				}
				if f, ok := raw["total"].(float64); ok {
					d.Total = int(f)
				}
				if d.Server == "b" && d.ServerTools == b.ToolsCount+1 && d.Total == reachable+1 {
					return true
				}
			}
			return false
		})
		page := p.searchHTTP("?q=" + url.QueryEscape("frobnicate zebras"))
		if len(page.Tools) == 0 || page.Tools[0].Name != "b:zebra_frobnicator" {
			t.Errorf("after add_tool: %v", hitNames(page.Tools))
		}
		if got := p.toolsTotal(); got != reachable+1 {
			t.Errorf("status tools.total %d, want %d", got, reachable+1)
		}
		if s := p.server("b"); s.ToolsCount != b.ToolsCount+1 || s.RetryCount != 0 {
			t.Errorf("b after list_changed: %+v", s)
		}
	})
}

// TestToolsLimitFromConfig: tools_limit in the file is the default page size, and an apply
// that changes it takes effect without a restart.
func TestToolsLimitFromConfig(t *testing.T) {
	cfg := servers(stdioFixture(t, "a"))
	cfg["tools_limit"] = 4
	p := startProxy(t, cfg)
	p.waitState("a", 20*time.Second, actors.StateReady)
	waitFor(t, 10*time.Second, "a's tools in the index", func() bool { return p.toolsTotal() > 6 })
	if n := len(p.searchHTTP("").Tools); n != 4 {
		t.Errorf("tools_limit 4: got %d tools", n)
	}
	if n := len(p.searchHTTP("?limit=5").Tools); n != 5 {
		t.Errorf("explicit limit=5 under tools_limit 4: got %d", n)
	}
	var cur struct {
		Config map[string]any `json:"config"`
	}
	p.do("GET", "/api/v1/config", nil, &cur)
	cur.Config["tools_limit"] = 6
	if code, body := p.do("POST", "/api/v1/config/apply", cur.Config, nil); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	if n := len(p.searchHTTP("").Tools); n != 6 {
		t.Errorf("after applying tools_limit 6: got %d tools", n)
	}
}
