package test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
)

// Catalog URIs of test/fixture --catalog (test/fixture/catalog.go).
const (
	fixtureSharedURI     = "fixture://shared/status"
	fixtureEverythingURI = "demo://resource/static/document/architecture.md"
)

// catalogServers are the servers of the catalog tests: server-everything ev, two fixtures
// with a catalog (fa, fb: they share one URI, and each shares one with ev), and a third,
// fq, quarantined from the start.
func catalogServers(t *testing.T) any {
	fq := stdioFixture(t, "fq", "--catalog")
	fq["quarantined"] = true
	return servers(everythingServer(t, "ev"), stdioFixture(t, "fa", "--catalog"), stdioFixture(t, "fb", "--catalog"), fq)
}

// notes collects the methods of the notifications a client receives.
type notes struct {
	mu  sync.Mutex
	got []mcp.JSONRPCNotification
}

func (n *notes) add(m mcp.JSONRPCNotification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, m)
}

// seen reports whether a notification of method (and, if uri is not "", for that uri)
// arrived since the last reset.
func (n *notes) seen(method, uri string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.got {
		if m.Method == method && (uri == "" || m.Params.AdditionalFields["uri"] == uri) {
			return true
		}
	}
	return false
}

func (n *notes) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = nil
}

func promptNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatalf("prompts/list: %v", err)
	}
	var out []string
	for _, p := range res.Prompts {
		out = append(out, p.Name)
	}
	return out
}

func resourceURIs(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatalf("resources/list: %v", err)
	}
	var out []string
	for _, r := range res.Resources {
		out = append(out, r.URI)
	}
	return out
}

// readText reads uri and returns its first text contents (and the URI they name).
func readText(c *client.Client, uri string) (text, named string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(ctx, req)
	if err != nil {
		return "", "", err
	}
	for _, c := range res.Contents {
		if tc, ok := c.(mcp.TextResourceContents); ok {
			return tc.Text, tc.URI, nil
		}
	}
	return "", "", nil
}

func getPrompt(c *client.Client, name string, args map[string]string) (*mcp.GetPromptResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.GetPromptRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	return c.GetPrompt(ctx, req)
}

// mcpRequest sends a request mcp-go's client has no method for (resources/subscribe).
func mcpRequest(c *client.Client, method string, params any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(method), Method: method, Params: params})
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error.AsError()
	}
	return nil
}

// TestMCPCatalog drives the prompts and resources of /mcp with mcp-go's client against
// server-everything and fixtures: every reachable server's prompts namespaced and got,
// resources listed under their own URI where unique and under mcpproxy://<server>/ where
// several servers list it, read (templates too), completions, a subscription with the
// updates of two servers, the activity records, a token's scope, and list_changed when a
// server is quarantined, after which its prompts and resources are gone and refused.
func TestMCPCatalog(t *testing.T) {
	p := startProxy(t, catalogServers(t))
	for _, s := range []string{"ev", "fa", "fb", "fq"} {
		p.waitState(s, 60*time.Second, actors.StateReady)
	}
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "catalog", transport.WithContinuousListening())
	var got notes
	c.OnNotification(got.add)

	var prompts []string
	waitFor(t, 20*time.Second, "the prompts of ev, fa and fb on /mcp", func() bool {
		prompts = promptNames(t, c)
		return slices.Contains(prompts, "ev__simple-prompt") && slices.Contains(prompts, "fa__greet") && slices.Contains(prompts, "fb__greet")
	})
	for _, n := range prompts {
		if strings.HasPrefix(n, "fq__") || !strings.Contains(n, "__") {
			t.Errorf("prompts/list has %q (quarantined or not namespaced): %v", n, prompts)
		}
	}
	res, err := getPrompt(c, "fa__greet", map[string]string{"name": "ann"})
	if err != nil {
		t.Fatalf("prompts/get fa__greet: %v", err)
	}
	if len(res.Messages) != 1 || textOf(&mcp.CallToolResult{Content: []mcp.Content{res.Messages[0].Content}}) != "Hello, ann, from fa." {
		t.Errorf("fa__greet = %+v", res.Messages)
	}
	if res, err := getPrompt(c, "ev__simple-prompt", nil); err != nil || len(res.Messages) == 0 {
		t.Errorf("prompts/get ev__simple-prompt: %v %+v", err, res)
	}
	if _, err := getPrompt(c, "fq__greet", map[string]string{"name": "x"}); err == nil {
		t.Error("a quarantined server's prompt answered")
	}

	uris := resourceURIs(t, c)
	for _, want := range []string{
		"fixture://fa/info", "fixture://fb/info",
		actors.NamespacedURI("fa", fixtureSharedURI), actors.NamespacedURI("fb", fixtureSharedURI),
		actors.NamespacedURI("ev", fixtureEverythingURI), actors.NamespacedURI("fa", fixtureEverythingURI),
		"demo://resource/static/document/features.md",
	} {
		if !slices.Contains(uris, want) {
			t.Errorf("resources/list lacks %s: %v", want, uris)
		}
	}
	for _, u := range uris {
		if strings.Contains(u, "fq") || u == fixtureSharedURI || u == fixtureEverythingURI {
			t.Errorf("resources/list has %s (quarantined, or a colliding URI not namespaced)", u)
		}
	}
	for uri, want := range map[string]string{
		"fixture://fa/info":                          "fixture fa",
		actors.NamespacedURI("fb", fixtureSharedURI): "status of fb",
		"fixture://fb/items/7":                       "item 7 of fb",
	} {
		text, named, err := readText(c, uri)
		if err != nil || text != want {
			t.Errorf("read %s = %q, %v; want %q", uri, text, err, want)
		}
		if named != uri {
			t.Errorf("read %s: contents name %s", uri, named)
		}
	}
	if text, _, err := readText(c, actors.NamespacedURI("ev", fixtureEverythingURI)); err != nil || text == "" || strings.Contains(text, "not server-everything's") {
		t.Errorf("read ev's %s = %q, %v", fixtureEverythingURI, text, err)
	}
	if text, _, err := readText(c, "demo://resource/dynamic/text/3"); err != nil || !strings.Contains(text, "Resource 3") {
		t.Errorf("read ev's template = %q, %v", text, err)
	}
	if text, _, err := readText(c, "fixture://fq/info"); err == nil {
		t.Errorf("a quarantined server's resource was read: %q", text)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tmpls, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var tnames []string
	for _, tm := range tmpls.ResourceTemplates {
		tnames = append(tnames, tm.URITemplate.Raw())
	}
	for _, want := range []string{"fixture://fa/items/{id}", "demo://resource/dynamic/text/{resourceId}"} {
		if !slices.Contains(tnames, want) {
			t.Errorf("resources/templates/list lacks %s: %v", want, tnames)
		}
	}

	comp, err := c.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{
		Ref: mcp.PromptReference{Type: "ref/prompt", Name: "fa__greet"}, Argument: mcp.CompleteArgument{Name: "name", Value: "al"}}})
	if err != nil || !slices.Equal(comp.Completion.Values, []string{"alice", "albert"}) {
		t.Errorf("completion of fa__greet's name: %v %+v", err, comp)
	}

	// Subscriptions: fa's shared status (namespaced) and ev's architecture.md.
	faShared, evDoc := actors.NamespacedURI("fa", fixtureSharedURI), actors.NamespacedURI("ev", fixtureEverythingURI)
	for _, uri := range []string{faShared, evDoc} {
		if err := mcpRequest(c, "resources/subscribe", map[string]any{"uri": uri}); err != nil {
			t.Fatalf("subscribe %s: %v", uri, err)
		}
	}
	if err := mcpRequest(c, "resources/subscribe", map[string]any{"uri": "fixture://fq/info"}); err == nil {
		t.Error("subscribed to a quarantined server's resource")
	}
	callTool(t, c, "call_tool", map[string]any{"name": "fa:touch_resource", "arguments": map[string]any{"uri": fixtureSharedURI}})
	waitFor(t, 20*time.Second, "notifications/resources/updated for fa's shared status", func() bool {
		return got.seen(mcp.MethodNotificationResourceUpdated, faShared)
	})
	callTool(t, c, "call_tool", map[string]any{"name": "ev:toggle-subscriber-updates", "arguments": map[string]any{}})
	waitFor(t, 20*time.Second, "notifications/resources/updated from server-everything", func() bool {
		return got.seen(mcp.MethodNotificationResourceUpdated, evDoc)
	})
	if got.seen(mcp.MethodNotificationResourceUpdated, actors.NamespacedURI("fb", fixtureSharedURI)) {
		t.Error("an update for a resource not subscribed to")
	}

	// The activity log has the prompts/get and the resources/read.
	var acts struct {
		Records []struct {
			Endpoint, Server, Method, Name, Outcome string
		} `json:"records"`
	}
	waitFor(t, 10*time.Second, "activity records of prompts/get and resources/read", func() bool {
		p.do("GET", "/api/v1/activity", nil, &acts)
		var prompt, read bool
		for _, r := range acts.Records {
			prompt = prompt || r.Endpoint == "/mcp" && r.Method == "prompts/get" && r.Server == "fa" && r.Name == "greet" && r.Outcome == "ok"
			read = read || r.Method == "resources/read" && r.Server == "fb" && r.Name == "fixture://fb/items/7"
		}
		return prompt && read
	})

	// /mcp/all offers the same prompts and resources.
	all := dialMCP(t, p.URL+"/mcp/all", p.mcpKey(), "all")
	if names := promptNames(t, all); !slices.Contains(names, "fa__greet") || !slices.Contains(names, "ev__simple-prompt") {
		t.Errorf("/mcp/all prompts: %v", names)
	}
	if text, _, err := readText(all, actors.NamespacedURI("fa", fixtureSharedURI)); err != nil || text != "status of fa" {
		t.Errorf("/mcp/all read fa's shared status = %q, %v", text, err)
	}

	// A token scoped to fa sees fa's prompts and resources only, and cannot read fb's.
	tok := p.createToken(map[string]any{"name": "only-fa", "servers": []string{"fa"}})
	scoped := dialMCP(t, p.URL+"/mcp", bearerOf(tok.Token), "scoped")
	for _, n := range promptNames(t, scoped) {
		if !strings.HasPrefix(n, "fa__") {
			t.Errorf("token scoped to fa lists prompt %s", n)
		}
	}
	sURIs := resourceURIs(t, scoped)
	if !slices.Contains(sURIs, "fixture://fa/info") {
		t.Errorf("token scoped to fa lacks fa's resource: %v", sURIs)
	}
	for _, u := range sURIs {
		if strings.Contains(u, "fb") || strings.HasPrefix(u, "demo://") || strings.HasPrefix(u, "mcpproxy://ev/") {
			t.Errorf("token scoped to fa lists %s", u)
		}
	}
	if text, _, err := readText(scoped, "fixture://fb/info"); err == nil {
		t.Errorf("token scoped to fa read fb's resource: %q", text)
	}
	if _, err := getPrompt(scoped, "fb__greet", map[string]string{"name": "x"}); err == nil {
		t.Error("token scoped to fa got fb's prompt")
	}

	// A prompt the server adds reaches the list (its list_changed is followed).
	got.reset()
	callTool(t, c, "call_tool", map[string]any{"name": "fa:add_prompt", "arguments": map[string]any{"name": "late"}})
	waitFor(t, 20*time.Second, "fa__late listed", func() bool { return slices.Contains(promptNames(t, c), "fa__late") })
	if !got.seen(string(mcp.MethodNotificationPromptsListChanged), "") {
		t.Error("no notifications/prompts/list_changed after fa added a prompt")
	}

	// Quarantine fb: list_changed for both, and its prompts and resources gone and refused.
	got.reset()
	if code, body := p.do("POST", "/api/v1/servers/fb/quarantine", map[string]any{"quarantined": true}, nil); code != 200 {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	waitFor(t, 20*time.Second, "prompts and resources list_changed after quarantining fb", func() bool {
		return got.seen(string(mcp.MethodNotificationPromptsListChanged), "") && got.seen(string(mcp.MethodNotificationResourcesListChanged), "")
	})
	if slices.Contains(promptNames(t, c), "fb__greet") {
		t.Error("fb__greet still listed after quarantine")
	}
	if slices.Contains(resourceURIs(t, c), "fixture://fb/info") {
		t.Error("fb's resource still listed after quarantine")
	}
	if _, err := getPrompt(c, "fb__greet", map[string]string{"name": "x"}); err == nil {
		t.Error("a quarantined server's prompt answered")
	}
	if text, _, err := readText(c, "fixture://fb/items/1"); err == nil {
		t.Errorf("a quarantined server's template was read: %q", text)
	}
	if !slices.Contains(promptNames(t, c), "fa__greet") {
		t.Error("fa's prompts gone too")
	}
}

// TestMCPCatalogTypeScriptClient drives the prompts and resources of /mcp with the official
// TypeScript SDK (test/mcp_catalog_client.mjs) against server-everything and the fixtures:
// capabilities, lists, gets, reads (namespaced and templated), a completion, updates of
// two subscriptions, and list_changed when fa is quarantined, its prompts and resources
// gone and refused after.
func TestMCPCatalogTypeScriptClient(t *testing.T) {
	p := startProxy(t, catalogServers(t))
	for _, s := range []string{"ev", "fa", "fb", "fq"} {
		p.waitState(s, 60*time.Second, actors.StateReady)
	}
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "wait")
	waitFor(t, 20*time.Second, "the prompts of ev and fa on /mcp", func() bool {
		names := promptNames(t, c)
		return slices.Contains(names, "ev__simple-prompt") && slices.Contains(names, "fa__greet")
	})
	out := runMCPScript(t, p, "mcp_catalog_client.mjs", 120*time.Second)
	var got struct {
		Capabilities struct {
			Prompts   *struct{ ListChanged bool } `json:"prompts"`
			Resources *struct {
				Subscribe, ListChanged bool
			} `json:"resources"`
			Completions any `json:"completions"`
		} `json:"capabilities"`
		Prompts, Resources, Templates    []string
		SimplePrompt                     int
		Greet, EvDoc, FaInfo, EvTemplate string
		Completion                       []string
		EvUpdated, FaUpdated             bool
		QuarantineStatus                 int
		PromptsChanged, ResourcesChanged bool
		PromptsAfter, ResourcesAfter     []string
		ReadAfter                        string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	caps := got.Capabilities
	if caps.Prompts == nil || !caps.Prompts.ListChanged || caps.Resources == nil || !caps.Resources.Subscribe || !caps.Resources.ListChanged || caps.Completions == nil {
		t.Errorf("capabilities: %s", out)
	}
	for _, want := range []string{"ev__simple-prompt", "ev__args-prompt", "fa__greet", "fb__greet"} {
		if !slices.Contains(got.Prompts, want) {
			t.Errorf("prompts lack %s: %v", want, got.Prompts)
		}
	}
	if slices.Contains(got.Prompts, "fq__greet") {
		t.Errorf("a quarantined server's prompt listed: %v", got.Prompts)
	}
	for _, want := range []string{"fixture://fa/info", "mcpproxy://ev/" + fixtureEverythingURI, "mcpproxy://fb/" + fixtureSharedURI} {
		if !slices.Contains(got.Resources, want) {
			t.Errorf("resources lack %s: %v", want, got.Resources)
		}
	}
	if !slices.Contains(got.Templates, "demo://resource/dynamic/text/{resourceId}") {
		t.Errorf("templates: %v", got.Templates)
	}
	if got.SimplePrompt == 0 || got.Greet != "Hello, ts, from fa." || got.EvDoc == "" || strings.Contains(got.EvDoc, "not server-everything's") ||
		got.FaInfo != "fixture fa" || !strings.Contains(got.EvTemplate, "Resource 2") {
		t.Errorf("gets and reads: %s", out)
	}
	if !slices.Equal(got.Completion, []string{"bob"}) {
		t.Errorf("completion: %v", got.Completion)
	}
	if !got.EvUpdated || !got.FaUpdated {
		t.Errorf("updates: ev %v, fa %v", got.EvUpdated, got.FaUpdated)
	}
	if got.QuarantineStatus != 200 || !got.PromptsChanged || !got.ResourcesChanged {
		t.Errorf("quarantine %d, prompts list_changed %v, resources list_changed %v", got.QuarantineStatus, got.PromptsChanged, got.ResourcesChanged)
	}
	if slices.Contains(got.PromptsAfter, "fa__greet") || slices.Contains(got.ResourcesAfter, "fixture://fa/info") || got.ReadAfter != "refused" {
		t.Errorf("after quarantine: prompts %v, resources %v, read %s", got.PromptsAfter, got.ResourcesAfter, got.ReadAfter)
	}
	if !slices.Contains(got.PromptsAfter, "ev__simple-prompt") {
		t.Errorf("ev's prompts gone too: %v", got.PromptsAfter)
	}
}
