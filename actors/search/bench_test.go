package search

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Synthetic but realistic vocabulary for benchmark catalogues: services, their objects and
// the verbs tools apply to them, joined the ways real MCP servers name tools.
var (
	benchServices = []string{
		"github", "gitlab", "slack", "jira", "linear", "notion", "postgres", "sqlite", "mysql",
		"filesystem", "browser", "calendar", "gmail", "weather", "kubernetes", "docker", "aws-s3",
		"sentry", "stripe", "confluence", "discord", "trello", "asana", "redis", "mongodb",
		"elasticsearch", "grafana", "datadog", "pagerduty", "zendesk", "hubspot", "salesforce",
		"shopify", "twilio", "sendgrid", "dropbox", "google-drive", "figma", "vercel", "netlify",
		"cloudflare", "terraform", "bigquery", "snowflake", "airtable", "todoist", "spotify",
		"youtube", "obsidian", "memory",
	}
	benchObjects = []string{
		"issue", "pull_request", "comment", "branch", "commit", "file", "directory", "channel",
		"message", "user", "team", "project", "page", "database", "table", "row", "query",
		"event", "calendar", "email", "draft", "label", "forecast", "alert", "pod", "deployment",
		"container", "image", "bucket", "object", "invoice", "customer", "payment", "subscription",
		"ticket", "workflow", "release", "tag", "dashboard", "metric", "log", "incident",
		"document", "folder", "playlist", "track", "note", "task", "record", "webhook",
	}
	benchVerbs = []string{
		"get", "list", "create", "update", "delete", "search", "add", "remove", "move", "copy",
		"archive", "restore", "export", "import", "sync", "share", "assign", "close", "merge",
		"start", "stop", "restart", "describe", "count", "download", "upload", "subscribe",
	}
	benchPhrases = []string{
		"Returns the result as JSON.", "Requires an API token with read access.",
		"Supports pagination with a cursor.", "Fails if the item does not exist.",
		"Use this to automate routine work.", "Results are sorted by most recent first.",
		"Optional filters narrow down the result.", "The operation is idempotent.",
	}
)

// syntheticCatalogue returns servers*perServer tools with a fixed seed, keyed by server.
func syntheticCatalogue(servers, perServer int) map[string][]Doc {
	r := rand.New(rand.NewPCG(42, 7))
	cat := make(map[string][]Doc, servers)
	styles := []func(v, o string) string{
		func(v, o string) string { return v + "_" + o },
		func(v, o string) string { return toCamel(v + "_" + o) },
		func(v, o string) string { return v + "-" + strings.ReplaceAll(o, "_", "-") },
	}
	for s := range servers {
		name := benchServices[s%len(benchServices)]
		if s >= len(benchServices) {
			name = fmt.Sprintf("%s-%d", name, s/len(benchServices)+1)
		}
		style := styles[s%len(styles)]
		seen := map[string]bool{}
		docs := make([]Doc, 0, perServer)
		for len(docs) < perServer {
			v := benchVerbs[r.IntN(len(benchVerbs))]
			o := benchObjects[r.IntN(len(benchObjects))]
			tool := style(v, o)
			if seen[tool] {
				tool = fmt.Sprintf("%s_%d", tool, len(docs))
			}
			seen[tool] = true
			desc := fmt.Sprintf("%s a %s in %s. %s %s",
				strings.ToUpper(v[:1])+v[1:], strings.ReplaceAll(o, "_", " "), name,
				benchPhrases[r.IntN(len(benchPhrases))], benchPhrases[r.IntN(len(benchPhrases))])
			// A schema like real tools have: the object's id, a filter and paging.
			schema := fmt.Sprintf(`{"type":"object","properties":{"%s_id":{"type":"string","description":"ID of the %s"},`+
				`"query":{"type":"string","description":"%s"},"limit":{"type":"integer","description":"Maximum number of results"},`+
				`"order":{"type":"string","enum":["asc","desc"]}},"required":["%s_id"]}`,
				o, strings.ReplaceAll(o, "_", " "), benchPhrases[r.IntN(len(benchPhrases))], o)
			docs = append(docs, Doc{Server: name, Tool: tool, Description: desc, InputSchema: []byte(schema),
				Annotations: []byte(`{"readOnlyHint":true}`)})
		}
		cat[name] = docs
	}
	return cat
}

func toCamel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

var benchQueries = []string{
	"create a new issue", "list pull requests on github", "send a slack message",
	"what's the weather forecast", "delete a kubernetes pod", "search documents in notion",
	"upload a file to a bucket", "get_file", "refund a stripe payment", "show recent incidents",
	"restart the docker container", "export the dashboard", "find customers by email",
	"archive old tickets", "sync calendar events", "crea",
}

func TestSyntheticCatalogueShape(t *testing.T) {
	cat := syntheticCatalogue(100, 100)
	ix := NewIndex()
	for s, docs := range cat {
		ix.SetServer(s, docs)
	}
	if ix.Len() != 10000 || len(cat) != 100 {
		t.Fatalf("Len %d servers %d, want 10000 on 100", ix.Len(), len(cat))
	}
	for _, q := range benchQueries {
		if len(ix.Search(q, 15)) == 0 {
			t.Errorf("Search(%q) found nothing", q)
		}
	}
}

// BenchmarkSearch10k is B4's in-process figure: one query over 10,000 tools on 100 servers.
// Besides the mean (ns/op) it reports the median and 99th percentile of single searches
// (p50-ns, p99-ns), the figures B4 sets targets for.
func BenchmarkSearch10k(b *testing.B) {
	cat := syntheticCatalogue(100, 100)
	ix := NewIndex()
	for s, docs := range cat {
		ix.SetServer(s, docs)
	}
	ix.Search("warm up", 15) // builds the prefix vocabulary once
	var took []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		ix.Search(benchQueries[i%len(benchQueries)], 15)
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}

// reindexTargets is an index of 100 servers of 100 tools and two lists for its "github"
// that differ in one description: set in turn, each SetServer analyses the server's tools
// again, while the same list twice changes nothing (docsSum).
func reindexTargets() (*Index, [2][]Doc) {
	cat := syntheticCatalogue(100, 100)
	ix := NewIndex()
	for s, docs := range cat {
		ix.SetServer(s, docs)
	}
	target := [2][]Doc{cat["github"], slices.Clone(cat["github"])}
	target[1][0].Description += " (changed)"
	return ix, target
}

// BenchmarkReindexServer100 is B4's re-index figure: replacing one server's 100 tools in an
// index of 10,000.
func BenchmarkReindexServer100(b *testing.B) {
	ix, target := reindexTargets()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ix.SetServer("github", target[i%2])
	}
}

// BenchmarkRestartServer100 is what a restart of an unchanged 100-tool server costs the
// index of 10,000: hidden while it reconnects, then set to the same list again.
func BenchmarkRestartServer100(b *testing.B) {
	ix, target := reindexTargets()
	b.ReportAllocs()
	for b.Loop() {
		ix.HideServer("github")
		ix.SetServer("github", target[0])
	}
}

// BenchmarkReindexThenSearch is one re-index followed by the first search after it, which
// also rebuilds the sorted vocabulary used for prefix matching.
func BenchmarkReindexThenSearch(b *testing.B) {
	ix, target := reindexTargets()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ix.SetServer("github", target[i%2])
		ix.Search(benchQueries[i%len(benchQueries)], 15)
	}
}

// BenchmarkTearDown10k removes 10,000 servers of 3 tools each, all with the same tool names
// and description words, one server at a time (what a registry tear-down does). Its cost
// per server must not grow with the number of servers left: it did, when removal walked
// the whole postings list of every term the server used.
func BenchmarkTearDown10k(b *testing.B) {
	const n = 10000
	docs := []Doc{
		{Tool: "echo", Description: "Echo text back"},
		{Tool: "fetch_url", Description: "Fetch a web page by its address"},
		{Tool: "add", Description: "Add two numbers"},
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("srv-%05d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ix := NewIndex()
		for _, s := range names {
			ix.SetServer(s, docs)
		}
		b.StartTimer()
		for _, s := range names {
			ix.RemoveServer(s)
		}
	}
}

// BenchmarkIndexHeap10k reports the live heap an index of 10,000 tools on 100 servers
// holds, per tool, after a collection: as built (heap-B/tool) and after Compact
// (compact-heap-B/tool). Most of the daemon's memory with many upstreams (B8) is this index.
func BenchmarkIndexHeap10k(b *testing.B) {
	cat := syntheticCatalogue(100, 100)
	loadLexicon()
	var per, compacted []float64
	for b.Loop() {
		var before, after, compact runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix := NewIndex()
		for s, docs := range cat {
			ix.SetServer(s, docs)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		ix.Compact()
		runtime.GC()
		runtime.ReadMemStats(&compact)
		per = append(per, float64(after.HeapAlloc-before.HeapAlloc)/float64(ix.Len()))
		compacted = append(compacted, float64(compact.HeapAlloc-before.HeapAlloc)/float64(ix.Len()))
		runtime.KeepAlive(ix)
	}
	slices.Sort(per)
	slices.Sort(compacted)
	b.ReportMetric(per[len(per)/2], "heap-B/tool")
	b.ReportMetric(compacted[len(compacted)/2], "compact-heap-B/tool")
}
