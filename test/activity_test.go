package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/prometheus/common/expfmt"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/store"
)

// activitySecret is a stored secret's value that an agent passes as an argument: it must
// not be in the store, the API or the export.
const activitySecret = "act1v1ty-s3cret-V4LUE"

// activityPage is GET /api/v1/activity's answer.
type activityPage struct {
	Records []activity.Record `json:"records"`
	Next    string            `json:"next"`
}

func (p *proxy) activity(query string) activityPage {
	p.t.Helper()
	var page activityPage
	if code, body := p.do("GET", "/api/v1/activity"+query, nil, &page); code != 200 {
		p.t.Fatalf("GET /api/v1/activity%s: %d %s", query, code, body)
	}
	return page
}

// waitActivity polls the listing (bounded) until it holds n records for query.
func (p *proxy) waitActivity(query string, n int) []activity.Record {
	p.t.Helper()
	var page activityPage
	waitFor(p.t, 15*time.Second, fmt.Sprintf("%d activity records for %q", n, query), func() bool {
		page = p.activity(query)
		return len(page.Records) >= n
	})
	return page.Records
}

// TestActivityRecordsBothEndpoints: calls through /mcp and /mcp/server/{name} appear with
// the right fields and outcomes (ok, tool error, refused by quarantine, resources/read,
// prompts/get), live on /events without arguments; a secret passed as an argument is in
// neither the store, the API, the export nor the event; the export parses as NDJSON and
// CSV; /metrics passes promtool and counts the calls made.
func TestActivityRecordsBothEndpoints(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx"), stdioFixture(t, "qq"), everythingServer(t, "ev")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	p.waitState("qq", 30*time.Second, actors.StateReady)
	p.waitState("ev", 60*time.Second, actors.StateReady)
	if code, body := p.do("PUT", "/api/v1/secrets/ACT_TOKEN", map[string]any{"value": activitySecret}, nil); code != 201 {
		t.Fatalf("put secret: %d %s", code, body)
	}
	if code, body := p.do("POST", "/api/v1/servers/qq/quarantine", map[string]any{"quarantined": true}, nil); code != 200 {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	events := openSSE(t, p, "/events?apikey="+p.Key, nil)
	defer events.Close()

	main := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "activity-agent")
	viaProxy(t, main, "fx:echo", map[string]any{"text": "token " + activitySecret + " here"})
	viaProxy(t, main, "fx:fail", map[string]any{"message": "no luck"})
	viaProxy(t, main, "qq:echo", map[string]any{"text": "x"})

	pt := dialMCP(t, p.URL+"/mcp/server/fx", p.mcpKey(), "activity-direct")
	callTool(t, pt, "echo", map[string]any{"text": activitySecret})
	callTool(t, pt, "fail", map[string]any{})
	ev := dialMCP(t, p.URL+"/mcp/server/ev", p.mcpKey(), "activity-ev")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "demo://resource/dynamic/text/1"
	if _, err := ev.ReadResource(ctx, rr); err != nil {
		t.Fatalf("resources/read: %v", err)
	}
	gp := mcp.GetPromptRequest{}
	gp.Params.Name = "args-prompt"
	gp.Params.Arguments = map[string]string{"city": "Lisbon"}
	if _, err := ev.GetPrompt(ctx, gp); err != nil {
		t.Fatalf("prompts/get: %v", err)
	}
	if _, err := ev.ListTools(ctx, mcp.ListToolsRequest{}); err != nil { // not recorded
		t.Fatalf("tools/list: %v", err)
	}

	recs := p.waitActivity("", 7)
	if len(recs) != 7 {
		t.Fatalf("%d records, want 7: %+v", len(recs), recs)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].ID >= recs[i-1].ID {
			t.Fatalf("records not newest first: %d then %d", recs[i-1].ID, recs[i].ID)
		}
	}
	byKey := map[string]activity.Record{}
	for _, r := range recs {
		byKey[r.Endpoint+" "+r.Server+" "+r.Tool+r.Name+" "+r.Outcome] = r
	}
	want := []struct {
		key, client, reason string
	}{
		{"/mcp fx echo ok", "activity-agent", ""},
		{"/mcp fx fail tool_error", "activity-agent", ""},
		{"/mcp qq echo refused", "activity-agent", activity.ReasonQuarantined},
		{"/mcp/server/fx fx echo ok", "activity-direct", ""},
		{"/mcp/server/fx fx fail tool_error", "activity-direct", ""},
		{"/mcp/server/ev ev demo://resource/dynamic/text/1 ok", "activity-ev", ""},
		{"/mcp/server/ev ev args-prompt ok", "activity-ev", ""},
	}
	for _, w := range want {
		r, ok := byKey[w.key]
		if !ok {
			t.Errorf("no record %q in %v", w.key, slices.Collect(maps.Keys(byKey)))
			continue
		}
		if r.Client.Name != w.client || r.Client.Version != "1.2.3" || r.Credential != actors.CredentialAdmin ||
			r.SessionID == "" || r.Reason != w.reason || r.StartedAt.IsZero() || r.DurationMS <= 0 {
			t.Errorf("%s: %+v", w.key, r)
		}
		if r.Outcome == activity.OutcomeOK && r.ResultBytes == 0 {
			t.Errorf("%s: result_bytes 0", w.key)
		}
	}
	if r := byKey["/mcp fx fail tool_error"]; r.Error != "no luck" || !strings.Contains(string(r.Arguments), "no luck") {
		t.Errorf("tool error record: %+v", r)
	}
	if r := byKey["/mcp/server/ev ev args-prompt ok"]; r.Method != "prompts/get" || !strings.Contains(string(r.Arguments), "Lisbon") {
		t.Errorf("prompt record: %+v", r)
	}
	echo := byKey["/mcp fx echo ok"]
	if string(echo.Arguments) != `{"text":"token `+"********"+` here"}` {
		t.Errorf("scrubbed arguments = %s", echo.Arguments)
	}
	var one struct {
		Record activity.Record `json:"record"`
	}
	if code, body := p.do("GET", fmt.Sprintf("/api/v1/activity/%d", echo.ID), nil, &one); code != 200 || one.Record.ID != echo.ID || one.Record.Tool != "echo" {
		t.Errorf("GET one: %d %s", code, body)
	}

	// Filters.
	if got := p.activity("?server=fx&status=tool_error"); len(got.Records) != 2 {
		t.Errorf("server=fx&status=tool_error: %d records", len(got.Records))
	}
	if got := p.activity("?status=refused"); len(got.Records) != 1 || got.Records[0].Server != "qq" {
		t.Errorf("status=refused: %+v", got.Records)
	}
	if got := p.activity("?session=" + echo.SessionID); len(got.Records) != 3 {
		t.Errorf("session filter: %d records", len(got.Records))
	}
	if got := p.activity("?tool=args-prompt"); len(got.Records) != 1 {
		t.Errorf("tool=args-prompt: %d records", len(got.Records))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := p.activity("?since=" + future); len(got.Records) != 0 {
		t.Errorf("since the future: %d records", len(got.Records))
	}
	if got := p.activity("?until=" + future + "&limit=2"); len(got.Records) != 2 || got.Next == "" {
		t.Errorf("until&limit=2: %d records, next %q", len(got.Records), got.Next)
	}

	// The export, both formats.
	code, nd := p.do("GET", "/api/v1/activity/export?format=ndjson", nil, nil)
	if code != 200 {
		t.Fatalf("export ndjson: %d", code)
	}
	sc := bufio.NewScanner(bytes.NewReader(nd))
	lines := 0
	for sc.Scan() {
		var r activity.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == 0 {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		lines++
	}
	if lines != 7 {
		t.Errorf("ndjson: %d lines, want 7", lines)
	}
	code, cv := p.do("GET", "/api/v1/activity/export?format=csv&server=fx", nil, nil)
	if code != 200 {
		t.Fatalf("export csv: %d", code)
	}
	rows, err := csv.NewReader(bytes.NewReader(cv)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][0] != "id" || rows[0][len(rows[0])-1] != "arguments" {
		t.Fatalf("csv: %v %q", err, rows)
	}
	for _, body := range [][]byte{nd, cv} {
		if bytes.Contains(body, []byte(activitySecret)) {
			t.Errorf("the secret is in the export: %s", body)
		}
	}
	_, listed := p.do("GET", "/api/v1/activity?limit=1000", nil, nil)
	if bytes.Contains(listed, []byte(activitySecret)) {
		t.Errorf("the secret is in the listing")
	}

	// activity.recorded, live, without arguments.
	evs := events.waitEvents(15*time.Second, "7 activity.recorded", func(evs []sseEvent) bool {
		n := 0
		for _, e := range evs {
			if e.Name == activity.EventRecorded {
				n++
			}
		}
		return n >= 7
	})
	for _, e := range evs {
		if e.Name == activity.EventRecorded && (strings.Contains(e.Data, `"arguments"`) || strings.Contains(e.Data, activitySecret)) {
			t.Errorf("activity.recorded carries arguments: %s", e.Data)
		}
	}

	// Metrics: promtool accepts them, and the counters match the calls.
	code, text := p.do("GET", "/metrics", nil, nil)
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	promtoolCheck(t, text)
	fams, err := new(expfmt.TextParser).TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	calls := map[string]float64{}
	for _, m := range fams["mcpproxy_tool_calls_total"].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		calls[l["server"]+" "+l["tool"]+" "+l["outcome"]] = m.GetCounter().GetValue()
	}
	for k, n := range map[string]float64{"fx echo ok": 2, "fx fail tool_error": 2, "qq echo refused": 1,
		"ev resources/read ok": 1, "ev prompts/get ok": 1} {
		if calls[k] != n {
			t.Errorf("mcpproxy_tool_calls_total{%s} = %v, want %v (all: %v)", k, calls[k], n, calls)
		}
	}
	if w := fams["mcpproxy_activity_records_written_total"].GetMetric(); len(w) != 1 || w[0].GetCounter().GetValue() != 7 {
		t.Errorf("activity written: %v", w)
	}
	for _, name := range []string{"mcpproxy_upstream_state", "mcpproxy_events_subscribers", "mcpproxy_http_requests_total",
		"mcpproxy_tool_call_duration_seconds", "mcpproxy_tool_call_proxy_duration_seconds", "go_goroutines", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if code, _ := p.doWith("GET", "/metrics", nil, nil, map[string]string{}); code != 401 {
		t.Errorf("GET /metrics without the key: %d, want 401", code)
	}

	// The store holds no trace of the secret either.
	p.Stop()
	st, err := store.Open(filepath.Join(p.DataDir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	if err := st.ScanActivity(0, func(_ uint64, data []byte) bool {
		n++
		if bytes.Contains(data, []byte(activitySecret)) {
			t.Errorf("the secret is in the store: %s", data)
		}
		return true
	}); err != nil || n != 7 {
		t.Errorf("store: %d records, %v", n, err)
	}
}

// promtoolCheck runs `promtool check metrics` (Debian's prometheus package) on text. A
// machine without promtool fails the test: the check is part of the contract (CI installs
// it, .ci/run).
func promtoolCheck(t *testing.T, text []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed for this test (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestActivityRetentionAndPaging: max_records drops the oldest; pages stay stable while
// new records arrive; max_age (applied live) empties the log.
func TestActivityRetentionAndPaging(t *testing.T) {
	cfg := servers(stdioFixture(t, "fx"))
	cfg["activity"] = map[string]any{"max_records": 20}
	p := startProxy(t, cfg)
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "retention")
	for i := range 25 {
		viaProxy(t, c, "fx:echo", map[string]any{"text": fmt.Sprint(i)})
	}
	var recs []activity.Record
	waitFor(t, 15*time.Second, "the newest 20 records", func() bool {
		recs = p.activity("?limit=1000").Records
		return len(recs) == 20 && recs[0].ID == 25
	})
	if recs[19].ID != 6 || string(recs[19].Arguments) != `{"text":"5"}` {
		t.Fatalf("oldest kept: %+v", recs[19])
	}

	// Paging while records arrive: page 1, five more calls, then the rest by cursor.
	first := p.activity("?limit=8")
	for i := range 5 {
		viaProxy(t, c, "fx:echo", map[string]any{"text": fmt.Sprint("new", i)})
	}
	waitFor(t, 15*time.Second, "the five new records", func() bool {
		return p.activity("?limit=1").Records[0].ID == 30
	})
	seen := map[uint64]bool{}
	page := first
	var ids []uint64
	for {
		for _, r := range page.Records {
			if seen[r.ID] {
				t.Fatalf("record %d on two pages", r.ID)
			}
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			break
		}
		page = p.activity("?limit=8&cursor=" + page.Next)
	}
	// The pages walk down from 25; the five newer records are not in them, and retention
	// dropped the five oldest meanwhile.
	if ids[0] != 25 || !slices.IsSortedFunc(ids, func(a, b uint64) int { return int(b) - int(a) }) || len(ids) < 15 {
		t.Fatalf("paged ids %v", ids)
	}
	for _, id := range ids {
		if id > 25 {
			t.Fatalf("a newer record (%d) entered the paging", id)
		}
	}

	// max_age, applied live: everything is older than a millisecond... after a moment.
	var got struct {
		Config map[string]any `json:"config"`
	}
	if code, body := p.do("GET", "/api/v1/config", nil, &got); code != 200 {
		t.Fatalf("config: %d %s", code, body)
	}
	got.Config["activity"] = map[string]any{"max_records": 20, "max_age": "1ms"}
	if code, body := p.do("POST", "/api/v1/config/apply", got.Config, nil); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	waitFor(t, 15*time.Second, "max_age to empty the log", func() bool {
		return len(p.activity("").Records) == 0
	})
	if code, body := p.do("POST", "/api/v1/config/validate", map[string]any{"activity": map[string]any{"max_records": -1}, "mcpServers": []any{}}, nil); code != 200 ||
		!strings.Contains(string(body), "activity.max_records") {
		t.Errorf("validate max_records -1: %d %s", code, body)
	}
}

// TestActivityCLI: activity list (table, --json, --server), show, export and list --follow,
// over the daemon's socket.
func TestActivityCLI(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := startProxyProcess(t, dir, servers(stdioFixture(t, "alpha"), stdioFixture(t, "beta")))
	p.waitState("alpha", 20*time.Second, actors.StateReady)
	p.waitState("beta", 20*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "cli-agent")
	viaProxy(t, c, "alpha:echo", map[string]any{"text": "one"})
	viaProxy(t, c, "beta:echo", map[string]any{"text": "two"})
	p.waitActivity("", 2)

	var page activityPage
	cliJSON(t, dir, &page, "activity", "list", "--server", "alpha")
	if len(page.Records) != 1 || page.Records[0].Server != "alpha" || page.Records[0].Tool != "echo" {
		t.Fatalf("activity list --server alpha --json = %+v", page.Records)
	}
	table := cliOK(t, dir, "activity", "list").stdout
	if !strings.HasPrefix(table, "ID") || !strings.Contains(table, "alpha") || !strings.Contains(table, "beta") {
		t.Errorf("activity list table:\n%s", table)
	}
	show := cliOK(t, dir, "activity", "show", fmt.Sprint(page.Records[0].ID)).stdout
	var rec activity.Record
	var args bytes.Buffer
	if err := json.Unmarshal([]byte(show), &rec); err != nil || json.Compact(&args, rec.Arguments) != nil || args.String() != `{"text":"one"}` || rec.Client.Name != "cli-agent" {
		t.Errorf("activity show: %q %v", show, err)
	}
	if res := runCLI(t, dir, "", "activity", "show", "999999"); res.code == 0 || !strings.Contains(res.stderr, "not found") {
		t.Errorf("activity show 999999: %d %q", res.code, res.stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(cliOK(t, dir, "activity", "export", "--format", "csv").stdout)).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Errorf("activity export --format csv: %v %q", err, rows)
	}
	nd := cliOK(t, dir, "activity", "export").stdout
	if n := strings.Count(nd, "\n"); n != 2 {
		t.Errorf("activity export: %d lines: %q", n, nd)
	}

	// --follow prints the recent records, then new ones as they are recorded.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "mcpproxy"), "--data-dir", dir, "activity", "list", "--follow", "--json", "--server", "beta")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var followErr syncBuffer
	cmd.Stderr = &followErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan activity.Record, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r activity.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Errorf("activity list --follow --json printed %q: %v", sc.Text(), err)
				continue
			}
			lines <- r
		}
		close(lines)
	}()
	next := func() activity.Record {
		select {
		case r, ok := <-lines:
			if !ok {
				t.Fatal("activity list --follow ended")
			}
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("activity list --follow printed nothing in 20 s; stderr: %s", followErr.String())
		}
		return activity.Record{}
	}
	if r := next(); r.Server != "beta" {
		t.Fatalf("first followed record: %+v", r)
	}
	viaProxy(t, c, "alpha:echo", map[string]any{"text": "filtered out"})
	viaProxy(t, c, "beta:echo", map[string]any{"text": "live"})
	if r := next(); r.Server != "beta" || r.Tool != "echo" || r.ID < 4 {
		t.Fatalf("followed record: %+v", r)
	}
}

// TestDashboardActivity runs dashboard_activity.spec.mjs: the activity panel lists the
// calls, filters them, shows a record's detail as text, and shows a new call live.
func TestDashboardActivity(t *testing.T) {
	browser, node := chromiumPath(t), playwrightNode(t)
	p := startProxy(t, servers(stdioFixture(t, "alpha"), stdioFixture(t, "beta")))
	p.waitState("alpha", 30*time.Second, actors.StateReady)
	p.waitState("beta", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "dash-agent")
	viaProxy(t, c, "alpha:echo", map[string]any{"text": "<img src=x onerror=window.__xss=1>"})
	viaProxy(t, c, "alpha:fail", map[string]any{})
	if code, body := p.do("POST", "/api/v1/servers/beta/quarantine", map[string]any{"quarantined": true}, nil); code != 200 {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	viaProxy(t, c, "beta:echo", map[string]any{"text": "x"})
	p.waitActivity("", 3)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	steps := map[string]func() error{
		"call": func() error { viaProxy(t, c, "alpha:add", map[string]any{"a": 1, "b": 2}); return nil },
		"done": func() error { return nil },
	}
	done, err := runSpec(t, ctx, node, "dashboard_activity.spec.mjs", steps,
		"DASH_URL="+p.URL, "DASH_KEY="+p.Key, "DASH_CHROMIUM="+browser, "DASH_USER_DATA="+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(done, ",") != "call,done" {
		t.Fatalf("steps done = %v", done)
	}
}
