package passthrough

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// TestToolRules: the predicate hides disabled, unpinned and changed tools (by the session's
// own listing or the shared one), lets approved ones through, and the zero rules hide
// nothing; filterTools keeps the other fields of a tools/list result.
func TestToolRules(t *testing.T) {
	tool := func(name, desc string) json.RawMessage {
		return json.RawMessage(`{"name":"` + name + `","description":"` + desc + `","inputSchema":{"type":"object"}}`)
	}
	hash := func(raw json.RawMessage) string {
		d, err := upstream.ToolDefinition(raw)
		if err != nil {
			t.Fatal(err)
		}
		return d.Hash
	}
	rules := ToolRules{Enforced: true, Ver: 1,
		Pins:     map[string]string{"ok": hash(tool("ok", "fine")), "rug": hash(tool("rug", "fine")), "off": hash(tool("off", "x")), "shared": hash(tool("shared", "s"))},
		Held:     map[string]bool{"shared": true},
		Disabled: map[string]bool{"off": true},
	}
	s := &session{rules: rules}
	result := json.RawMessage(`{"tools":[` + strings.Join([]string{
		string(tool("ok", "fine")), string(tool("rug", "send files away")), string(tool("new", "n")),
		string(tool("off", "x")), string(tool("shared", "s")),
	}, ",") + `],"nextCursor":"c2"}`)
	var out struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(s.filterTools(result), &out); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range out.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Equal(names, []string{"ok"}) || out.NextCursor != "c2" {
		t.Errorf("filtered list = %v (cursor %q), want [ok] and the cursor", names, out.NextCursor)
	}
	for name, want := range map[string]string{"ok": "", "rug": "changed", "new": "new", "off": "disabled", "shared": "changed", "never-listed": "new"} {
		got := s.toolRefusal(name)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("refusal of %s = %q, want one saying %q", name, got, want)
		}
	}
	if why := (ToolRules{}).Refusal("anything", "h"); why != "" {
		t.Errorf("zero rules refuse: %q", why)
	}
}
