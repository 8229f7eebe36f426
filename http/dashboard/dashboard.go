// Package dashboard holds the browser dashboard that mcpproxy serves at "/": one HTML page,
// its script and its style sheet, embedded in the binary so that the dashboard needs no
// files on disk and no network beyond the daemon itself.
//
// The page shell is public; everything it shows comes from the keyed REST API and the
// /events stream, with the API key the user typed in (or that arrived as ?apikey= in the
// URL printed at start-up) kept in the browser's localStorage. The script loads nothing
// from elsewhere and builds the DOM with textContent only, so that the page can run under
// a Content-Security-Policy of script-src 'self' and untrusted upstream strings (tool
// descriptions, error messages, server names) are never parsed as HTML.
//
// Package http serves these files (http/dashboard.go); this package only embeds them.
package dashboard

import (
	"embed"
	"io/fs"
)

// Files holds index.html and the scripts and style sheets it loads: app.js (the shell's
// script: key, status, servers, search) and one script per further panel, each loaded by
// its own <script> tag in index.html.
//
//go:embed index.html *.js *.css
var Files embed.FS

// Index is the name of the page shell in Files.
const Index = "index.html"

// Assets are the files the page loads, served under /dashboard/: every script and style
// sheet in Files.
var Assets = assets()

func assets() []string {
	var names []string
	for _, pattern := range []string{"*.js", "*.css"} {
		m, err := fs.Glob(Files, pattern)
		if err != nil {
			panic(err) // the patterns are constants
		}
		names = append(names, m...)
	}
	return names
}
