package search

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// testCatalogue is a small, realistic set of servers for ranking tests.
var testCatalogue = map[string][]Doc{
	"github": {
		{Tool: "create_issue", Description: "Create a new issue in a GitHub repository"},
		{Tool: "list_issues", Description: "List issues in a GitHub repository with filters"},
		{Tool: "get_file_contents", Description: "Get the contents of a file or directory from a GitHub repository"},
		{Tool: "create_pull_request", Description: "Create a new pull request in a GitHub repository"},
		{Tool: "search_repositories", Description: "Search for GitHub repositories"},
	},
	"filesystem": {
		{Tool: "read_file", Description: "Read the complete contents of a file from the file system"},
		{Tool: "write_file", Description: "Create a new file or completely overwrite an existing file with new content"},
		{Tool: "list_directory", Description: "Get a detailed listing of all files and directories in a specified path"},
		{Tool: "search_files", Description: "Recursively search for files and directories matching a pattern"},
		{Tool: "move_file", Description: "Move or rename files and directories"},
	},
	"slack": {
		{Tool: "slack_post_message", Description: "Post a new message to a Slack channel"},
		{Tool: "slack_list_channels", Description: "List public channels in the workspace"},
		{Tool: "slack_get_users", Description: "Get a list of all users in the workspace with their basic profile information"},
	},
	"weather": {
		{Tool: "get_forecast", Description: "Get the weather forecast for a location"},
		{Tool: "get_alerts", Description: "Get weather alerts for a US state"},
	},
	"jira": {
		{Tool: "jira_create_issue", Description: "Create a new Jira issue with summary, description and type"},
		{Tool: "jira_search", Description: "Search Jira issues using JQL"},
	},
}

func newTestIndex(t testing.TB) *Index {
	t.Helper()
	ix := NewIndex()
	for server, docs := range testCatalogue {
		ix.SetServer(server, docs)
	}
	return ix
}

func keys(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.Server + ":" + h.Tool
	}
	return out
}

func TestSearchRanking(t *testing.T) {
	ix := newTestIndex(t)
	tests := []struct {
		query string
		first string
	}{
		// Exact names come first, whatever BM25 thinks of their words.
		{"create_issue", "github:create_issue"},
		{"createIssue", "github:create_issue"},
		{"jira:jira_create_issue", "jira:jira_create_issue"},
		{"JIRA_CREATE_ISSUE", "jira:jira_create_issue"},
		{"read_file", "filesystem:read_file"},
		// Words of the name weigh more than words of a description.
		{"read file", "filesystem:read_file"},
		{"weather forecast", "weather:get_forecast"},
		{"post a message on slack", "slack:slack_post_message"},
		// Synonyms and stems.
		{"fetch the file", "filesystem:read_file"},
		{"rename a file", "filesystem:move_file"},
		{"open a pull request", "github:create_pull_request"},
		{"weather warnings for a state", "weather:get_alerts"},
		// Server names count.
		{"jira search", "jira:jira_search"},
		{"search issues in jira", "jira:jira_search"},
		// The last word is a prefix while typed.
		{"list direc", "filesystem:list_directory"},
		{"pull req", "github:create_pull_request"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			hits := ix.Search(tt.query, 5)
			if len(hits) == 0 || keys(hits)[0] != tt.first {
				t.Fatalf("Search(%q) = %v, want %s first", tt.query, hits, tt.first)
			}
			for i := 1; i < len(hits); i++ {
				if hits[i].Score > hits[i-1].Score {
					t.Errorf("hits not sorted by score: %v", hits)
				}
			}
		})
	}
}

func TestSearchFieldWeights(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("a", []Doc{
		{Tool: "archive", Description: "Store an old record somewhere cold"},
		{Tool: "store_record", Description: "Write an archive record"},
	})
	// "archive" is in one tool's name and in the other's description: the name wins.
	if got := keys(ix.Search("archive", 2)); !slices.Equal(got, []string{"a:archive", "a:store_record"}) {
		t.Errorf("archive: got %v", got)
	}
	ix = NewIndex()
	ix.SetServer("calendar", []Doc{{Tool: "list_events", Description: "List upcoming entries"}})
	ix.SetServer("tickets", []Doc{{Tool: "list_events", Description: "List calendar entries of the queue"}})
	// "calendar" is one tool's server and the other's description: the server wins.
	if got := keys(ix.Search("calendar list events", 2)); got[0] != "calendar:list_events" {
		t.Errorf("calendar: got %v", got)
	}
}

func TestSearchQueryForms(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("pagerduty", []Doc{
		{Tool: "list_oncalls", Description: "List the schedules of the rotation"},
		{Tool: "create_incident", Description: "Open an incident"},
	})
	ix.SetServer("twilio", []Doc{{Tool: "make_call", Description: "Place a phone call"}})
	ix.SetServer("fetch", []Doc{{Tool: "fetch_txt", Description: "Fetch a website as plain text"}})
	ix.SetServer("chart", []Doc{
		{Tool: "generate_boxplot_chart", Description: "Generate a boxplot of a distribution"},
		{Tool: "generate_bar_chart", Description: "Generate a bar chart of scores"},
	})
	ix.SetServer("filesystem", []Doc{
		{Tool: "move_file", Description: "Move or rename files"},
		{Tool: "create_directory", Description: "Create a new directory"},
	})
	ix.SetServer("github", []Doc{
		{Tool: "create_issue", Description: "Create an issue"},
		{Tool: "create_branch", Description: "Create a branch"},
		{Tool: "add_label", Description: "Add a label"},
		{Tool: "new_release", Description: "Publish a new release"},
	})
	tests := []struct {
		name, query, first string
	}{
		// Two words also match their compound.
		{"compound", "who is on call", "pagerduty:list_oncalls"},
		// And split by a word or two.
		{"split compound", "box and whisker plot of scores", "chart:generate_boxplot_chart"},
		// A file name asks for a file, not for its extension.
		{"file name", "rename report.txt to final.txt", "filesystem:move_file"},
		// "make" is rare here but stands for the common "create": the folder decides.
		{"synonym idf", "make a new folder", "filesystem:create_directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keys(ix.Search(tt.query, 3)); len(got) == 0 || got[0] != tt.first {
				t.Errorf("Search(%q) = %v, want %s first", tt.query, got, tt.first)
			}
		})
	}
	// Two function words make no compound: "do we" is no "dow" (day of week), which only a
	// cron tool's schema says.
	ix.SetServer("cron", []Doc{{Tool: "parse", Description: "Explain a schedule",
		InputSchema: json.RawMessage(`{"properties":{"expr":{"description":"minute hour dom month dow"}}}`)}})
	if got := keys(ix.Search("what branches do we have", 3)); slices.Contains(got, "cron:parse") {
		t.Errorf("Search(what branches do we have) = %v: \"do we\" matched dow", got)
	}
}

func TestFileNamesToWords(t *testing.T) {
	tests := map[string]string{
		"rename report.txt to final.txt": "rename report file txt to final file txt",
		"open notes.md, please":          "open notes file md, please",
		"create.issue":                   "create.issue",
		"version 1.2":                    "version 1.2",
		"no dots here":                   "no dots here",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := fileNamesToWords(in); got != want {
				t.Errorf("fileNamesToWords(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestSearchServerName(t *testing.T) {
	ix := newTestIndex(t)
	hits := ix.Search("slack", 10)
	if len(hits) != 3 {
		t.Fatalf("Search(slack) = %v, want the 3 slack tools", hits)
	}
	for _, h := range hits {
		if h.Server != "slack" {
			t.Errorf("Search(slack) returned %v", h)
		}
	}
}

func TestSearchEmptyAndMisses(t *testing.T) {
	ix := newTestIndex(t)
	for _, q := range []string{"", "   ", "\t\n", "the of a", "zzzqqq"} {
		t.Run(fmt.Sprintf("%q", q), func(t *testing.T) {
			if hits := ix.Search(q, 10); hits != nil {
				t.Errorf("Search(%q) = %v, want nil", q, hits)
			}
		})
	}
	if hits := NewIndex().Search("anything", 10); hits != nil {
		t.Errorf("empty index: %v", hits)
	}
}

func TestSearchLimit(t *testing.T) {
	ix := newTestIndex(t)
	all := ix.Search("file", 0)
	if len(all) < 4 {
		t.Fatalf("Search(file, 0) = %v, want every match", all)
	}
	for _, limit := range []int{1, 2, 3} {
		got := ix.Search("file", limit)
		if !slices.Equal(got, all[:limit]) {
			t.Errorf("limit %d: %v, want the first %d of %v", limit, got, limit, all)
		}
	}
}

func TestSearchTiesBrokenByName(t *testing.T) {
	ix := NewIndex()
	docs := []Doc{{Tool: "zeta", Description: "ping"}, {Tool: "alpha", Description: "ping"}, {Tool: "mid", Description: "ping"}}
	ix.SetServer("s2", docs)
	ix.SetServer("s1", docs)
	got := keys(ix.Search("ping", 0))
	want := []string{"s1:alpha", "s1:mid", "s1:zeta", "s2:alpha", "s2:mid", "s2:zeta"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSetServerReplaces(t *testing.T) {
	ix := newTestIndex(t)
	before := ix.Len()
	ix.SetServer("weather", []Doc{{Tool: "get_tides", Description: "Tide tables for a harbour"}})
	if ix.Len() != before-1 || ix.ServerLen("weather") != 1 {
		t.Fatalf("Len %d ServerLen %d, want %d and 1", ix.Len(), ix.ServerLen("weather"), before-1)
	}
	for _, q := range []string{"get_forecast", "weather:get_forecast", "forecast", "alerts"} {
		for _, h := range ix.Search(q, 0) {
			if h.Tool == "get_forecast" || h.Tool == "get_alerts" {
				t.Errorf("Search(%q) still returns replaced %v", q, h)
			}
		}
	}
	if got := keys(ix.Search("tides", 5)); !slices.Equal(got, []string{"weather:get_tides"}) {
		t.Errorf("Search(tides) = %v", got)
	}
	// Duplicate tool names keep the last; the server argument wins over Doc.Server.
	ix.SetServer("dup", []Doc{{Server: "other", Tool: "t", Description: "first"}, {Tool: "t", Description: "second"}})
	if ix.ServerLen("dup") != 1 || ix.ServerLen("other") != 0 {
		t.Errorf("dup: ServerLen %d other %d", ix.ServerLen("dup"), ix.ServerLen("other"))
	}
	if hits := ix.Search("first", 5); hits != nil {
		t.Errorf("the first duplicate is indexed: %v", hits)
	}
	if got := keys(ix.Search("second", 5)); !slices.Equal(got, []string{"dup:t"}) {
		t.Errorf("Search(second) = %v", got)
	}
	// An empty list removes the server.
	ix.SetServer("dup", nil)
	if ix.ServerLen("dup") != 0 || ix.Search("second", 5) != nil {
		t.Errorf("SetServer(dup, nil) left tools behind")
	}
}

// notFound checks that no search of queries, and no listing, returns a tool of server,
// which is gone as why says ("removed", "hidden").
func notFound(t *testing.T, ix *Index, server, why string, queries ...string) {
	t.Helper()
	for _, q := range queries {
		for _, h := range ix.Search(q, 0) {
			if h.Server == server {
				t.Errorf("Search(%q) returns %s %v", q, why, h)
			}
		}
	}
	for _, h := range ix.All(0) {
		if h.Server == server {
			t.Errorf("All returns %s %v", why, h)
		}
	}
}

func TestRemoveServer(t *testing.T) {
	ix := newTestIndex(t)
	before := ix.Len()
	ix.RemoveServer("github")
	ix.RemoveServer("never-added")
	if ix.Len() != before-5 || ix.ServerLen("github") != 0 {
		t.Fatalf("Len %d ServerLen %d", ix.Len(), ix.ServerLen("github"))
	}
	notFound(t, ix, "github", "removed", "create_issue", "github:create_issue", "github", "pull request", "repositories", "create issue")
	// Re-adding reuses the freed slots and works as before.
	ix.SetServer("github", testCatalogue["github"])
	if got := keys(ix.Search("create_issue", 1)); !slices.Equal(got, []string{"github:create_issue"}) {
		t.Errorf("after re-adding: %v", got)
	}
	// Removing everything leaves a clean index.
	for server := range testCatalogue {
		ix.RemoveServer(server)
	}
	if ix.Len() != 0 || len(ix.terms) != 0 || len(ix.tables[tableKey]) != 0 || len(ix.tables[tableName]) != 0 || len(ix.tables[tableNameWords]) != 0 {
		t.Errorf("empty index keeps state: len %d terms %d keys %d", ix.Len(), len(ix.terms), len(ix.tables[tableKey]))
	}
	if ix.sumLen != [numFields]int{} {
		t.Errorf("sumLen = %v after removing everything", ix.sumLen)
	}
	if ix.Search("file", 10) != nil || ix.All(10) != nil {
		t.Errorf("empty index returns hits")
	}
}

// TestHideServer: a hidden server's tools are in no search, listing or count, exact names
// included; the same list set again brings them back scored exactly as before, without
// being analysed again; a different list replaces them; a hidden server can be removed.
func TestHideServer(t *testing.T) {
	ix := newTestIndex(t)
	queries := []string{"create issue", "github:create_issue", "create_issue", "pull request", "file", "issues in jira"}
	before := map[string][]Hit{}
	for _, q := range queries {
		before[q] = ix.Search(q, 0)
	}
	n := ix.Len()
	ix.HideServer("github")
	ix.HideServer("github") // twice is once
	ix.HideServer("never-added")
	if ix.Len() != n-5 || ix.ServerLen("github") != 0 {
		t.Fatalf("hidden: Len %d ServerLen %d, want %d and 0", ix.Len(), ix.ServerLen("github"), n-5)
	}
	notFound(t, ix, "github", "hidden", queries...)
	// The visible documents' lengths are what a fresh index of them has.
	fresh := NewIndex()
	for server, docs := range testCatalogue {
		if server != "github" {
			fresh.SetServer(server, docs)
		}
	}
	if ix.sumLen != fresh.sumLen {
		t.Errorf("sumLen with github hidden %v, without it %v", ix.sumLen, fresh.sumLen)
	}

	// The same list again: nothing is analysed (no allocation but the fingerprint's), and
	// every search is what it was.
	docs := slices.Clone(testCatalogue["github"])
	docs[0].InputSchema = json.RawMessage(`{"type":"object","properties":{"title":{"type":"string"}}}`)
	docs[0].Annotations = json.RawMessage(`{"destructiveHint":false}`)
	ix.SetServer("github", docs)
	for _, q := range queries {
		before[q] = ix.Search(q, 0)
	}
	if a := testing.AllocsPerRun(10, func() {
		ix.HideServer("github")
		ix.SetServer("github", docs)
	}); a > 0 {
		t.Errorf("hiding and setting an unchanged list allocates %.0f times, want 0", a)
	}
	if ix.Len() != n || ix.ServerLen("github") != 5 {
		t.Fatalf("shown again: Len %d ServerLen %d, want %d and 5", ix.Len(), ix.ServerLen("github"), n)
	}
	for _, q := range queries {
		if got := ix.Search(q, 0); !slices.Equal(got, before[q]) {
			t.Errorf("Search(%q) after hide and show = %v, want %v", q, got, before[q])
		}
	}

	// A changed list, hidden or not, is indexed as given.
	changed := slices.Clone(docs)
	changed[0].Description = "Open a ticket about a regression"
	ix.HideServer("github")
	ix.SetServer("github", changed)
	if got := keys(ix.Search("regression", 5)); !slices.Equal(got, []string{"github:create_issue"}) {
		t.Errorf("after a changed list: Search(regression) = %v", got)
	}
	ix.SetServer("github", docs)
	if ix.Search("regression", 5) != nil {
		t.Errorf("the changed description outlived the list that replaced it")
	}

	// Removing a hidden server leaves the index as if it had never been added.
	ix.HideServer("github")
	ix.RemoveServer("github")
	if ix.Len() != n-5 || ix.sumLen != fresh.sumLen {
		t.Errorf("hidden then removed: Len %d sumLen %v, want %d and %v", ix.Len(), ix.sumLen, n-5, fresh.sumLen)
	}
	for server := range testCatalogue {
		ix.RemoveServer(server)
	}
	if ix.Len() != 0 || len(ix.terms) != 0 || ix.sumLen != [numFields]int{} {
		t.Errorf("empty index keeps state: len %d terms %d sumLen %v", ix.Len(), len(ix.terms), ix.sumLen)
	}
}

func TestAll(t *testing.T) {
	ix := newTestIndex(t)
	all := ix.All(0)
	if len(all) != ix.Len() {
		t.Fatalf("All(0) has %d, Len %d", len(all), ix.Len())
	}
	ks := keys(all)
	if !slices.IsSorted(ks) {
		t.Errorf("All not sorted: %v", ks)
	}
	for _, h := range all {
		if h.Score != 0 {
			t.Errorf("All: score %v", h)
		}
	}
	if got := ix.All(3); !slices.Equal(got, all[:3]) {
		t.Errorf("All(3) = %v", got)
	}
	ix.SetServer("aaa", []Doc{{Tool: "first"}})
	if got := ix.All(1); len(got) != 1 || got[0].Server != "aaa" {
		t.Errorf("All after SetServer: %v", got)
	}
}

// TestDeterminism builds the same catalogue in different orders, with removals in between,
// and expects identical results and scores.
func TestDeterminism(t *testing.T) {
	servers := make([]string, 0, len(testCatalogue))
	for s := range testCatalogue {
		servers = append(servers, s)
	}
	slices.Sort(servers)
	a := NewIndex()
	for _, s := range servers {
		a.SetServer(s, testCatalogue[s])
	}
	b := NewIndex()
	b.SetServer("junk", []Doc{{Tool: "x", Description: "file file file"}})
	for i := len(servers) - 1; i >= 0; i-- {
		b.SetServer(servers[i], testCatalogue[servers[i]])
	}
	b.RemoveServer("junk")
	for _, q := range []string{"file", "create issue", "get", "list all the things", "sea", "github:create_issue"} {
		t.Run(q, func(t *testing.T) {
			ha, hb := a.Search(q, 0), b.Search(q, 0)
			if !slices.Equal(ha, hb) {
				t.Errorf("different results:\n%v\n%v", ha, hb)
			}
			if again := a.Search(q, 0); !slices.Equal(ha, again) {
				t.Errorf("repeated search differs:\n%v\n%v", ha, again)
			}
		})
	}
}

// TestRemoveManySharedTerms removes most of many servers whose tools share their names and
// words (the postings and name lists that removal edits by swapping), in a shuffled order,
// and checks that the index then answers exactly like one built from the rest alone.
func TestRemoveManySharedTerms(t *testing.T) {
	const n = 300
	docs := func(i int) []Doc {
		return []Doc{
			{Tool: "echo", Description: "Echo text back"},
			{Tool: "fetch_url", Description: "Fetch a web page by its address"},
			{Tool: fmt.Sprintf("tool_%d", i%7), Description: "A tool that every seventh server has"},
		}
	}
	name := func(i int) string { return fmt.Sprintf("srv-%03d", i) }
	ix := NewIndex()
	for i := range n {
		ix.SetServer(name(i), docs(i))
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	kept := map[int]bool{}
	for k, i := range order {
		if k%5 == 0 {
			kept[i] = true
			continue
		}
		if k%3 == 0 {
			ix.SetServer(name(i), docs(i)) // a reindex on the way: remove and add again
		}
		ix.RemoveServer(name(i))
	}
	fresh := NewIndex()
	for i := range n {
		if kept[i] {
			fresh.SetServer(name(i), docs(i))
		}
	}
	if ix.Len() != fresh.Len() {
		t.Fatalf("Len %d, want %d", ix.Len(), fresh.Len())
	}
	for _, q := range []string{"echo", "fetch", "fetch a web page", "tool_3", "srv-010:echo", "seventh server", "fet"} {
		got, want := ix.Search(q, 0), fresh.Search(q, 0)
		if !slices.Equal(got, want) {
			t.Errorf("Search(%q) after removals: %d hits %v..., want %d hits %v...", q, len(got), head(got), len(want), head(want))
		}
	}
	if got, want := ix.All(0), fresh.All(0); !slices.Equal(got, want) {
		t.Errorf("All after removals: %d hits, want %d", len(got), len(want))
	}
	for i := range n {
		ix.RemoveServer(name(i))
	}
	if ix.Len() != 0 || len(ix.terms) != 0 || len(ix.tables[tableName]) != 0 {
		t.Errorf("empty index keeps state: len %d terms %d names %d", ix.Len(), len(ix.terms), len(ix.tables[tableName]))
	}
}

func head(h []Hit) []Hit { return h[:min(3, len(h))] }

func TestExplain(t *testing.T) {
	d := Doc{
		Server: "acme", Tool: "scale_deployment", Title: "Scale a deployment",
		Description: "Change how many pods a deployment runs",
		InputSchema: []byte(`{"type":"object","properties":{"replicas":{"type":"integer","description":"Desired pod count"},` +
			`"strategy":{"type":"string","enum":["rolling","recreate"]}}}`),
		Annotations:  []byte(`{"destructiveHint":true}`),
		Instructions: "Manages a Kubernetes cluster",
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"scale", []string{"name", "title"}},
		{"5 replicas", []string{"parameters"}},
		{"pod", []string{"description", "parameter_descriptions"}},
		{"rolling", []string{"enum_values"}},
		{"destructive", []string{"annotations"}},
		{"kubernetes cluster", []string{"instructions"}},
		{"acme", []string{"server"}},
		// "k8s" is a synonym of "kubernetes".
		{"k8s", []string{"instructions"}},
		{"count of pods", []string{"description", "parameter_descriptions"}},
		{"unrelated words", nil},
		{"  ", nil},
	} {
		if got := Explain(c.query, d); !slices.Equal(got, c.want) {
			t.Errorf("Explain(%q) = %v, want %v", c.query, got, c.want)
		}
	}
}

// TestSearchReportsFields: each hit of Search carries the fields it matched in the index
// searched, among other tools, the same as Explain finds for the tool alone; a listing
// (All) carries none.
func TestSearchReportsFields(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("acme", []Doc{{
		Server: "acme", Tool: "scale_deployment", Title: "Scale a deployment",
		Description: "Change how many pods a deployment runs",
		InputSchema: []byte(`{"type":"object","properties":{"replicas":{"type":"integer","description":"Desired pod count"}}}`),
	}})
	ix.SetServer("other", []Doc{
		{Server: "other", Tool: "list_pods", Description: "List the pods of a namespace"},
		{Server: "other", Tool: "scale", Description: "Scale an image"},
	})
	for _, c := range []struct {
		query, want string
		fields      []string
	}{
		{"5 replicas", "acme:scale_deployment", []string{"parameters"}},
		{"scale deployment", "acme:scale_deployment", []string{"name", "title", "description"}},
		{"pods of a namespace", "other:list_pods", []string{"name", "description"}},
		{"other:scale", "other:scale", []string{"name", "server", "description"}},
	} {
		hits := ix.Search(c.query, 5)
		if len(hits) == 0 || hits[0].Server+":"+hits[0].Tool != c.want {
			t.Errorf("Search(%q) = %v, want %s first", c.query, hits, c.want)
			continue
		}
		if got := hits[0].Fields.Names(); !slices.Equal(got, c.fields) {
			t.Errorf("Search(%q) fields %v, want %v", c.query, got, c.fields)
		}
	}
	for _, h := range ix.All(0) {
		if h.Fields != 0 {
			t.Errorf("All: %s:%s carries fields %v", h.Server, h.Tool, h.Fields.Names())
		}
	}
}

func TestSchemaFieldsRank(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("k", []Doc{
		{Tool: "scale", Description: "Scale a workload",
			InputSchema: []byte(`{"type":"object","properties":{"replicaCount":{"type":"integer"}}}`)},
		{Tool: "restart", Description: "Restart a workload"},
	})
	if got := keys(ix.Search("bump it to 5 replicas", 5)); len(got) == 0 || got[0] != "k:scale" {
		t.Errorf("a property name (replicaCount) does not find its tool: %v", got)
	}
	// Parts of another shape are skipped, not fatal to the rest of the schema.
	odd := fieldTexts("s", Doc{Tool: "t", InputSchema: []byte(`{"type":"object","properties":{` +
		`"tags":{"type":"array","items":[{"type":"string"}],"description":"Labels"},` +
		`"flag":true,"mode":{"description":7,"enum":["fast",1,"slow"]}}}`)})
	if odd.text[fieldParams] != "flag mode tags" || odd.text[fieldParamDesc] != "Labels" || odd.text[fieldEnum] != "fast slow" {
		t.Errorf("odd schema: params %q, descriptions %q, enums %q", odd.text[fieldParams], odd.text[fieldParamDesc], odd.text[fieldEnum])
	}
	// A broken schema is ignored, not fatal.
	ix.SetServer("bad", []Doc{{Tool: "x", Description: "y", InputSchema: []byte(`{not json`)}})
	if ix.ServerLen("bad") != 1 {
		t.Errorf("a tool with an invalid schema is not indexed")
	}
}

// A negated word also asks for its "un-" form, and a WordNet phrase for its synonyms rather
// than its words.
func TestSearchNegationAndPhrases(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("vcs", []Doc{
		{Tool: "clean", Description: "Remove untracked files from the working tree"},
		{Tool: "track", Description: "Start tracking files"},
		{Tool: "get_object", Description: "Get an object by id"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"the files git isn't tracking", "vcs:clean"},
		{"files not tracked", "vcs:clean"},
		{"get rid of those files", "vcs:clean"},
	})
}

// A word the index lacks finds the word it is derived from by a common suffix.
func TestSearchDerivedWords(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("dev", []Doc{
		{Tool: "lint", Description: "Lint source files"},
		{Tool: "run", Description: "Run a program"},
		{Tool: "check", Description: "Check that a document is valid"},
		{Tool: "format", Description: "Format source files"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"the linter", "dev:lint"},
		{"a program runner", "dev:run"},
		{"check the validity of this document", "dev:check"},
	})
	if b := ix.derivedBase("formatter"); b != "format" {
		t.Errorf("derivedBase(formatter) = %q, want format", b)
	}
	if b := ix.derivedBase("zebra"); b != "" {
		t.Errorf("derivedBase(zebra) = %q, want none", b)
	}
}

// A verb and its -ation noun meet although stem keeps them apart ("configur", "configurat"),
// and an adjective in -ent or -ant its noun in -ence or -ance ("different", "difference"),
// either way round, while a short word does not take a longer one for its noun ("form" is
// no "format"; WordNet's synonym still may).
func TestSearchActionNouns(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("dev", []Doc{
		{Tool: "setup", Description: "Configure the proxy"},
		{Tool: "proxy_status", Description: "Show the status of the proxy"},
		{Tool: "image_info", Description: "Describe an image"},
		{Tool: "users", Description: "List the users"},
		{Tool: "reshape", Description: "Transform an image"},
		{Tool: "alert", Description: "Notify a user"},
		{Tool: "settings", Description: "Show the installation of a package"},
		{Tool: "dates", Description: "Format a date"},
		{Tool: "submit", Description: "Submit a web form"},
		{Tool: "compare", Description: "Show the differences between two files"},
		{Tool: "rename", Description: "Give a file a different name"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"proxy configuration", "dev:setup"},
		{"image transformations", "dev:reshape"},
		{"send a user a notification", "dev:alert"},
		{"how did I install this package", "dev:settings"},
		{"the form on the web", "dev:submit"},
		{"how are these two files different", "dev:compare"},
	})
	if got := ix.actionForms("form", stem("form")); got != nil {
		t.Errorf("actionForms(form) = %v: form is no noun of format", got)
	}
	if got := ix.actionForms("configuration", stem("configuration")); !slices.Equal(got, []string{stem("configure")}) {
		t.Errorf("actionForms(configuration) = %v", got)
	}
}

// Two adjacent words make a compound only when the second may join the first: a particle
// does ("log in" is "login"), an object pronoun does not ("dig it" is no "digit").
func TestSearchCompoundsWithoutPronouns(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("dev", []Doc{
		{Tool: "digit_sum", Description: "Sum the digits of a number"},
		{Tool: "recover", Description: "Recover a lost commit"},
		{Tool: "login", Description: "Start a session"},
		{Tool: "logs", Description: "Read the logs"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"I lost a commit, can we dig it out", "dev:recover"},
		{"log in", "dev:login"},
	})
	if got := keys(ix.Search("I lost a commit, can we dig it out", 5)); slices.Contains(got, "dev:digit_sum") {
		t.Errorf("Search(... dig it out) = %v: dig it made digit", got)
	}
}

// wantFirst checks that each query ranks its tool first.
func wantFirst(t *testing.T, ix *Index, cases []struct{ query, first string }) {
	t.Helper()
	for _, tc := range cases {
		if got := keys(ix.Search(tc.query, 3)); len(got) == 0 || got[0] != tc.first {
			t.Errorf("Search(%q) = %v, want %s first", tc.query, got, tc.first)
		}
	}
}

// A number in the query is a value, not a word, whether on its own or part of a name (a file's
// date): a description that happens to say it does not draw the query, while the digits of a
// word ("base64") still match.
func TestSearchNumberIsAValue(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("c", []Doc{
		{Tool: "add", Description: "Adds two numbers"},
		{Tool: "convert_base", Description: "Convert numbers between bases 2 to 36"},
		{Tool: "base64", Description: "Encode or decode strings"},
		{Tool: "base", Description: "Convert between bases"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"add 2 and 36", "c:add"},
		{"decode this base64", "c:base64"},
	})
	ix.SetServer("fs", []Doc{{Tool: "write_file", Description: "Write a file"}})
	ix.SetServer("cal", []Doc{{Tool: "month", Description: "Show month 06 of year 2024, or 12"}})
	wantFirst(t, ix, []struct{ query, first string }{
		{"save notes-2024-06-12.txt", "fs:write_file"},
	})
}

// An indefinite pronoun ("everything", "someone") is a function word: it does not draw a
// query to a server or tool that is named with it.
func TestSearchIndefinitePronounsAreStopwords(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("everything", []Doc{{Tool: "echo", Description: "Echoes back the input"}})
	ix.SetServer("memory", []Doc{{Tool: "delete_entities", Description: "Delete entities and their relations from the knowledge graph"}})
	if got := keys(ix.Search("forget everything you know about Bob", 5)); !slices.Equal(got, []string{"memory:delete_entities"}) {
		t.Errorf("Search = %v, want only memory:delete_entities", got)
	}
}

// Adverbs of degree and a verb's particle on its own are function words too, while the
// compound the particle makes with its verb still counts.
func TestSearchDegreeAdverbsAndParticlesAreStopwords(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("memory", []Doc{{Tool: "delete_entities", Description: "Delete entities from the knowledge graph"}})
	ix.SetServer("chart", []Doc{{Tool: "liquid", Description: "A bubble that fills up completely at 100%"}})
	ix.SetServer("backups", []Doc{{Tool: "run_backup", Description: "Run a backup"}})
	if got := keys(ix.Search("forget Project Falcon, delete it completely", 5)); !slices.Equal(got, []string{"memory:delete_entities"}) {
		t.Errorf("Search = %v, want only memory:delete_entities", got)
	}
	if got := keys(ix.Search("back up now", 5)); len(got) == 0 || got[0] != "backups:run_backup" {
		t.Errorf("Search(back up now) = %v, want backups:run_backup first", got)
	}
}

// A catalogue's short form by truncation ("diff", "calc") is found from the whole word, but
// an English word that begins another ("pass" in "password") is not taken for one.
func TestSearchTruncatedShortForm(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("t", []Doc{
		{Tool: "diff", Description: "Line by line comparison of two texts"},
		{Tool: "count", Description: "Count the words of two texts"},
		{Tool: "pass", Description: "Skip two texts"},
		{Tool: "hash", Description: "Hash two texts"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"the difference between two texts", "t:diff"},
	})
	for _, alts := range ix.queryTerms("password") {
		for _, a := range alts {
			if a.te.term == "pass" {
				t.Errorf("password matches pass, an English word")
			}
		}
	}
}

// A question's interrogative says what it asks for: "when" a time, "how big" a size.
func TestSearchQuestionWords(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("fs", []Doc{
		{Tool: "get_file_info", Description: "Retrieve metadata about a file: its size and its last modified time"},
		{Tool: "edit_file", Description: "Edit a file: make changes to its lines"},
		{Tool: "read_file", Description: "Read a file, the whole of it"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"when was this file last changed", "fs:get_file_info"},
	})
	ix.SetServer("maps", []Doc{
		{Tool: "plan_route", Description: "A route between two places"},
		{Tool: "trip_length", Description: "The distance between two places"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"how far apart are these two places", "maps:trip_length"},
	})
}

// A number in the query leans towards the tool whose schema takes a number.
func TestSearchNumberMeetsNumericProperty(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("k", []Doc{
		{Tool: "resize_pool", Description: "Resize the worker pool",
			InputSchema: []byte(`{"type":"object","properties":{"count":{"type":"integer"}}}`)},
		{Tool: "rename_pool", Description: "Rename the worker pool",
			InputSchema: []byte(`{"type":"object","properties":{"label":{"type":"string"}}}`)},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"the worker pool at 12", "k:resize_pool"},
		// Without a number the two tie, and the key decides.
		{"the worker pool", "k:rename_pool"},
	})
}

// "tell me" frames a request; it does not ask to tell anyone.
func TestSearchFramingVerbs(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("s", []Doc{
		{Tool: "notify", Description: "Tell the team: send a notification"},
		{Tool: "stars", Description: "The star count of a repository"},
	})
	wantFirst(t, ix, []struct{ query, first string }{
		{"tell me the star count", "s:stars"},
		{"tell the team", "s:notify"},
	})
}

// The second stage reorders the first stage's five best: a tool that says the query's own
// word ("edit") ranks above one that says only a common synonym of it ("update"), which the
// first stage scores as the same concept; and a search for fewer hits returns the first of
// a longer one, with scores still falling.
func TestSearchSecondStageWeighsTheWordItself(t *testing.T) {
	ix := NewIndex()
	var docs []Doc
	for i := range 20 {
		docs = append(docs, Doc{Tool: fmt.Sprintf("update_thing_%d", i), Description: "Update a thing"})
	}
	docs = append(docs,
		Doc{Tool: "update_text", Description: "Update the text of a note"},
		Doc{Tool: "revise_text", Description: "Edit the text of a note"},
	)
	ix.SetServer("a", docs)
	hits := ix.Search("edit a note", 5)
	if len(hits) < 2 || keys(hits)[0] != "a:revise_text" || keys(hits)[1] != "a:update_text" {
		t.Fatalf("Search(edit a note) = %v, want a:revise_text then a:update_text", keys(hits))
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Errorf("hits not sorted by score: %v", hits)
		}
	}
	long := ix.Search("edit a note", 0)
	for n := 1; n <= 5; n++ {
		if got, want := keys(ix.Search("edit a note", n)), keys(long[:n]); !slices.Equal(got, want) {
			t.Errorf("Search(limit %d) = %v, want the first of the full search %v", n, got, want)
		}
	}
}

// The last word's prefix expansion counts fully while the word is being typed ("fil"), half
// when it is an English word already ("file"), which is more often finished.
func TestPrefixWeightOfACompleteWord(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("a", []Doc{{Tool: "filepath_join", Description: "Join the parts of a filepath"}})
	prefixW := func(q string) float64 {
		for _, alts := range ix.queryTerms(q) {
			for _, a := range alts {
				if a.te.term == "filepath" {
					return a.w
				}
			}
		}
		return 0
	}
	if got := prefixW("join fil"); got != prefixWeight {
		t.Errorf("join fil: filepath at %v, want %v", got, prefixWeight)
	}
	if got, want := prefixW("join file"), prefixWeight*completeWordPrefixShare; got != want {
		t.Errorf("join file: filepath at %v, want %v", got, want)
	}
	if got := prefixW("join file "); got != 0 {
		t.Errorf("join file (then a space): filepath at %v, want no prefix match", got)
	}
}

// A title's words that the name already says count once: a tool titled "Read Sheet" ranks
// level with an untitled read_sheet for "read sheet", while a title's own words still count.
func TestTitleRepeatingTheNameCountsOnce(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("a", []Doc{{Tool: "read_sheet", Title: "Read Sheet", Description: "Read cells"}})
	ix.SetServer("b", []Doc{{Tool: "read_sheet", Description: "Read cells"}})
	ix.SetServer("c", []Doc{{Tool: "read_sheet", Title: "Read Spreadsheet", Description: "Read cells"}})
	hits := ix.Search("read sheet ", 3)
	if len(hits) != 3 || hits[0].Score != hits[1].Score || hits[1].Score != hits[2].Score {
		t.Errorf("read sheet: %v, want three equal scores", hits)
	}
	hits = ix.Search("read spreadsheet ", 3)
	if len(hits) == 0 || keys(hits)[0] != "c:read_sheet" {
		t.Errorf("read spreadsheet: %v, want c:read_sheet first (its title says spreadsheet)", hits)
	}
}

// TestPostingIsCompact: a posting keeps a byte per field's count, so the index, whose
// memory is mostly postings (one per term of each tool), stays at 20 bytes a posting.
func TestPostingIsCompact(t *testing.T) {
	if got := unsafe.Sizeof(posting{}); got > 20 {
		t.Fatalf("a posting takes %d bytes", got)
	}
}

func TestPostingRefIsCompact(t *testing.T) {
	if got := unsafe.Sizeof(postingRef{}); got > 8 {
		t.Fatalf("a posting ref takes %d bytes", got)
	}
}

// TestCompact: Compact leaves no more spare capacity in the postings than the allocator's
// size classes round up to (under an eighth), changes no answer, and
// the index goes on working after it, its removed terms' numbers reused.
func TestCompact(t *testing.T) {
	docs := func(i int) []Doc {
		return []Doc{
			{Tool: "echo", Description: "Echo text back"},
			{Tool: fmt.Sprintf("tool_%d", i), Description: fmt.Sprintf("A tool of server %d only, word%d", i, i)},
		}
	}
	name := func(i int) string { return fmt.Sprintf("srv-%03d", i) }
	ix, fresh := NewIndex(), NewIndex()
	for i := range 200 {
		ix.SetServer(name(i), docs(i))
	}
	for i := 0; i < 200; i += 2 {
		ix.RemoveServer(name(i))
	}
	queries := []string{"echo", "tool_7", "word9", "server 51", "ech"}
	before := map[string][]Hit{}
	for _, q := range queries {
		before[q] = ix.Search(q, 0)
	}
	ix.Compact()
	for _, te := range ix.termList {
		if te != nil && cap(te.postings) > len(te.postings)+len(te.postings)/8+1 {
			t.Fatalf("term %q keeps %d postings in a capacity of %d", te.term, len(te.postings), cap(te.postings))
		}
	}
	for _, q := range queries {
		if got := ix.Search(q, 0); !slices.Equal(got, before[q]) {
			t.Errorf("Search(%q) after Compact: %v, want %v", q, head(got), head(before[q]))
		}
	}
	// A second Compact finds nothing to copy.
	lists := map[*termEntry]*posting{}
	for _, te := range ix.termList {
		if te != nil {
			lists[te] = &te.postings[0]
		}
	}
	ix.Compact()
	for te, first := range lists {
		if &te.postings[0] != first {
			t.Fatalf("a second Compact copied the postings of %q", te.term)
		}
	}
	// Changes after Compact: new servers reuse removed terms' numbers.
	freed := len(ix.freeTerms)
	if freed == 0 {
		t.Fatal("removing servers freed no term numbers")
	}
	for i := 200; i < 260; i++ {
		ix.SetServer(name(i), docs(i))
	}
	if len(ix.freeTerms) >= freed {
		t.Errorf("new terms did not reuse freed numbers: %d free before, %d after", freed, len(ix.freeTerms))
	}
	for i := range 260 {
		if i >= 200 || i%2 == 1 {
			fresh.SetServer(name(i), docs(i))
		}
	}
	for _, q := range append(queries, "tool_230", "word255") {
		if got, want := ix.Search(q, 0), fresh.Search(q, 0); !slices.Equal(got, want) {
			t.Errorf("Search(%q) after Compact and changes: %v, want %v", q, head(got), head(want))
		}
	}
	for i := range 260 {
		ix.RemoveServer(name(i))
	}
	live := 0
	for _, te := range ix.termList {
		if te != nil {
			live++
		}
	}
	if live != 0 || len(ix.terms) != 0 || len(ix.freeTerms) != len(ix.termList) {
		t.Errorf("empty index keeps terms: %d live, %d in the map, %d free of %d", live, len(ix.terms), len(ix.freeTerms), len(ix.termList))
	}
}

// TestLongQueryIsBounded: of a query longer than the bounds, the first words are searched
// and the rest ignored; a cut never splits a character.
func TestLongQueryIsBounded(t *testing.T) {
	ix := NewIndex()
	ix.SetServer("s", []Doc{{Tool: "create_issue", Description: "Create an issue"}, {Tool: "send_email", Description: "Send an email"}})
	long := "create an issue " + strings.Repeat("filler ", maxQueryWords) + "send email"
	if hits := ix.Search(long, 5); len(hits) != 1 || hits[0].Tool != "create_issue" {
		t.Errorf("a long query found %v, want create_issue alone (its words after the first %d ignored)", hits, maxQueryWords)
	}
	huge := "send email " + strings.Repeat("x", 2*maxQueryBytes)
	if got := boundQuery(huge); got != "send email" {
		t.Errorf("boundQuery cut a long word's query to %q", got)
	}
	accents := strings.Repeat("é", maxQueryBytes) // two bytes each, no space
	if got := boundQuery(accents); !utf8.ValidString(got) || len(got) > maxQueryBytes || len(got) < maxQueryBytes-1 {
		t.Errorf("boundQuery cut %d bytes of accents to %d bytes (valid %v)", len(accents), len(got), utf8.ValidString(got))
	}
	if got := boundQuery("short query"); got != "short query" {
		t.Errorf("boundQuery changed a short query: %q", got)
	}
}
