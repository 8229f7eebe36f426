package search

import "sync"

// synonymGroups are small sets of words that people use for the same operation or object.
// A query word also matches the other words of its groups, at a lower weight than itself, so
// "fetch the page" finds a tool that "gets" a page while a tool that says "fetch" still ranks
// above it. The groups are written as plain words and stemmed when the package loads. Keep
// them general: every group here should hold for any catalogue of tools, not one query set.
var synonymGroups = [][]string{
	// Verbs.
	{"get", "fetch", "read", "retrieve", "obtain", "load", "lookup"},
	{"create", "add", "new", "make", "insert", "open", "register", "generate", "schedule", "book"},
	{"generate", "draw", "render", "produce"},
	{"delete", "remove", "erase", "destroy", "drop", "purge", "trash", "unlink", "cancel", "forget"},
	{"list", "enumerate", "show", "browse", "view", "display", "print"},
	{"search", "find", "query", "lookup", "locate", "look"},
	{"update", "edit", "modify", "change", "patch", "alter", "set", "amend"},
	{"write", "save", "store", "put", "persist", "cache"},
	{"send", "post", "publish", "notify", "tell"},
	{"run", "execute", "exec", "invoke", "launch", "trigger"},
	{"stop", "kill", "terminate", "halt", "abort", "cancel"},
	{"start", "launch", "begin", "boot"},
	{"move", "rename", "relocate"},
	{"copy", "duplicate", "clone", "fork"},
	{"close", "resolve", "finish", "complete", "done", "tick"},
	{"undo", "revert", "reset", "rollback", "rewind"},
	{"download", "pull", "fetch"},
	{"upload", "push"},
	{"summarize", "summary", "overview", "digest"},
	{"describe", "detail", "info", "information", "inspect"},
	{"acknowledge", "ack"},
	{"merge", "land", "integrate"},
	{"open", "start", "begin"},
	{"show", "get", "read", "view"},
	{"forget", "delete", "erase"},
	{"react", "reaction", "emoji"},
	{"approve", "accept", "lgtm"},
	{"reject", "decline", "deny"},
	{"rename", "relabel"},
	{"revert", "undo"},
	{"scale", "resize"},
	{"draft", "prepare", "compose"},
	// Quantities and times.
	{"all", "every", "entire", "whole"},
	{"multiple", "several", "batch", "bulk"},
	{"count", "many", "tally"},
	{"size", "big", "large"},
	{"current", "now", "today", "currently", "latest"},
	// Objects.
	{"repo", "repository"},
	{"directory", "dir", "folder"},
	{"file", "document", "doc"},
	{"database", "db"},
	{"message", "msg", "chat"},
	{"issue", "bug", "ticket"},
	{"incident", "outage", "downtime"},
	{"alert", "warning", "alarm"},
	{"email", "mail", "e-mail", "inbox"},
	{"image", "picture", "photo", "img", "screenshot"},
	{"audio", "sound", "voice"},
	{"event", "meeting", "appointment"},
	{"task", "todo", "reminder", "remind"},
	{"kubernetes", "k8s", "kube", "kubectl"},
	{"configuration", "config", "settings", "setting", "preferences"},
	{"environment", "env"},
	{"user", "member", "person", "people", "account"},
	{"contact", "lead", "prospect"},
	{"author", "authorship", "wrote", "written"},
	{"authenticated", "login", "loggedin", "signedin", "whoami"},
	{"filesystem", "disk"},
	{"comment", "reply"},
	{"container", "docker"},
	{"payment", "charge", "checkout", "pay"},
	{"cost", "spend", "spent", "billing", "expense"},
	{"error", "exception", "crash"},
	{"statistics", "stats", "metrics"},
	{"webpage", "page", "website", "site", "url"},
	{"link", "url"},
	{"text", "content"},
	{"bucket", "s3"},
	{"weather", "forecast", "rain", "snow", "temperature", "storm", "wind", "sunny"},
	{"excel", "xlsx", "xls", "workbook"},
	{"dns", "cname", "nameserver"},
	{"domain", "subdomain"},
	{"table", "schema"},
	{"log", "logs"},
	{"secret", "credential", "password"},
	{"translate", "translation"},
	{"tag", "label"},
	{"deploy", "deployment", "release", "rollout"},
}

// abbreviations are the short forms common in software, each with the words it stands for.
// A query word that is one of them also asks for its expansion, word by word, at full
// weight, so "open a PR" asks for a "pull request" (the short form itself still matches a
// tool that says "PR"). Like the groups, they are general: none names a server or a tool.
var abbreviations = map[string]string{
	"pr": "pull request", "prs": "pull requests", "mr": "merge request", "mrs": "merge requests",
	"repo": "repository", "repos": "repositories", "db": "database",
	"dbs": "databases", "env": "environment", "envs": "environments", "dir": "directory",
	"dirs": "directories", "cfg": "configuration", "conf": "configuration", "config": "configuration",
	"msg": "message", "msgs": "messages", "auth": "authentication", "authn": "authentication",
	"authz": "authorization", "info": "information", "img": "image", "pic": "picture",
	"pics": "pictures", "docs": "documentation", "pkg": "package", "pkgs": "packages",
	"dep": "dependency", "deps": "dependencies", "var": "variable", "vars": "variables",
	"func": "function", "fn": "function", "param": "parameter", "params": "parameters",
	"arg": "argument", "args": "arguments", "req": "request", "resp": "response",
	"err": "error", "errs": "errors", "src": "source", "dest": "destination", "dst": "destination",
	"tmp": "temporary", "temp": "temporary", "max": "maximum", "min": "minimum", "num": "number",
	"qty": "quantity", "addr": "address", "ci": "continuous integration",
	"cd": "continuous delivery", "vm": "virtual machine", "vms": "virtual machines",
	"ns": "namespace", "svc": "service", "svcs": "services", "sched": "schedule",
	"cal": "calendar", "dm": "direct message", "dms": "direct messages",
	"pw": "password", "pwd": "password", "ssh": "secure shell", "tz": "timezone",
	"stats": "statistics", "perf": "performance", "prod": "production",
	"dev": "development", "lib": "library", "libs": "libraries", "util": "utility",
	"admin": "administrator", "org": "organization", "orgs": "organizations",
	"eta": "estimated arrival", "gps": "coordinates", "lat": "latitude", "lng": "longitude",
	"lon": "longitude",
	"thx": "thanks", "asap": "soon", "yaml": "configuration", "json": "data",
	"js": "javascript", "py": "python", "cwd": "current working directory", "cli": "command line",
	"os": "operating system", "id": "identifier", "ids": "identifiers",
	"desc": "description", "attr": "attribute", "attrs": "attributes", "btn": "button",
	"txn": "transaction", "txns": "transactions", "acct": "account", "pct": "percent",
}

// synonymTable maps a stemmed term to the stemmed terms it may stand for. It is built on
// first use, not at init: stemming the groups is most of this package's init, which every
// start of the binary (a CLI command too) would pay.
var synonymTable = sync.OnceValue(func() map[string][]string { return buildSynonyms(synonymGroups) })

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
