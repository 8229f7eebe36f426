package search

// synonymGroups are small sets of words that people use for the same operation or object.
// A query word also matches the other words of its groups, at a lower weight than itself, so
// "fetch the page" finds a tool that "gets" a page while a tool that says "fetch" still ranks
// above it. The groups are written as plain words and stemmed when the package loads. Keep
// them general: every group here should hold for any catalogue of tools, not one query set.
var synonymGroups = [][]string{
	// Verbs.
	{"get", "fetch", "read", "retrieve", "obtain", "load", "lookup"},
	{"create", "add", "new", "make", "insert", "open", "register"},
	{"delete", "remove", "erase", "destroy", "drop", "purge", "trash", "unlink"},
	{"list", "enumerate", "show", "browse", "view"},
	{"search", "find", "query", "lookup", "locate", "look"},
	{"update", "edit", "modify", "change", "patch", "alter", "set", "amend"},
	{"write", "save", "store", "put", "persist"},
	{"send", "post", "publish", "notify"},
	{"run", "execute", "exec", "invoke", "launch", "trigger"},
	{"stop", "kill", "terminate", "halt", "abort", "cancel"},
	{"start", "launch", "begin", "boot"},
	{"move", "rename", "relocate"},
	{"copy", "duplicate", "clone"},
	{"close", "resolve", "finish", "complete"},
	{"download", "pull", "fetch"},
	{"upload", "push"},
	{"summarize", "summarise", "summary", "overview", "digest"},
	{"describe", "detail", "info", "information", "inspect"},
	// Objects.
	{"repo", "repository"},
	{"directory", "dir", "folder"},
	{"file", "document", "doc"},
	{"database", "db"},
	{"message", "msg", "chat"},
	{"issue", "bug", "ticket", "incident"},
	{"email", "mail", "e-mail", "inbox"},
	{"image", "picture", "photo", "img", "screenshot"},
	{"event", "meeting", "appointment"},
	{"kubernetes", "k8s", "kube", "kubectl"},
	{"configuration", "config", "settings", "setting", "preferences"},
	{"environment", "env"},
	{"user", "member", "person", "people", "account"},
	{"comment", "reply"},
	{"container", "docker"},
	{"payment", "charge"},
	{"error", "exception", "crash"},
	{"statistics", "stats", "metrics"},
	{"webpage", "page", "website", "site", "url"},
	{"link", "url"},
	{"text", "content"},
	{"bucket", "s3"},
	{"forecast", "weather"},
	{"table", "schema"},
	{"log", "logs"},
	{"secret", "credential", "password"},
	{"translate", "translation"},
	{"tag", "label"},
	{"deploy", "deployment", "release", "rollout"},
}

// synonyms maps a stemmed term to the stemmed terms it may stand for.
var synonyms = buildSynonyms(synonymGroups)

func buildSynonyms(groups [][]string) map[string][]string {
	m := make(map[string][]string)
	for _, g := range groups {
		var stems []string
		for _, w := range g {
			for _, t := range terms(w, nil) {
				stems = append(stems, t)
			}
		}
		for _, a := range stems {
			for _, b := range stems {
				if a != b && !contains(m[a], b) {
					m[a] = append(m[a], b)
				}
			}
		}
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
