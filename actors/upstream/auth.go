package upstream

import (
	"errors"
	"net/http"
	"time"

	"github.com/mcpproxy/mcpproxy/actors/oauth"
	"github.com/mcpproxy/mcpproxy/config"
)

// authorize puts the server's OAuth tokens (opts.Tokens) on every request of a remote
// connection: an oauth.Transport between mcp-go and the limiter. Without opts.Tokens it
// does nothing. A request that still gets 401 (or 403 insufficient_scope) after a refresh
// marks the connection lost with the *oauth.AuthRequiredError, so the upstream actor moves
// to needs_auth instead of retrying. Every token the Transport sends, refreshed ones
// included, is added to the connection's Scrubber first.
func (c *Conn) authorize(cfg config.ServerConfig, opts Options) {
	if opts.Tokens == nil {
		return
	}
	base := c.http.Transport
	t := &oauth.Transport{Base: base, Store: opts.Tokens, URL: cfg.URL, Regrant: opts.Regrant,
		HTTP: &http.Client{Transport: base, Timeout: 30 * time.Second}, Scrub: c.scrub.Add}
	t.OnChange = func() {
		if opts.OnAuthChange != nil {
			opts.OnAuthChange()
		}
		if e := t.AuthRequired(); e != nil {
			c.lost(e)
		}
	}
	c.auth = t
	c.http.Transport = t
}

// authErr is the dial error when the server asked for a login: the challenge wins over
// mcp-go's vaguer error for the 401.
func (c *Conn) authErr(err error) error {
	if c.auth == nil || err == nil {
		return err
	}
	if e := c.auth.AuthRequired(); e != nil {
		return e
	}
	var ae *oauth.AuthRequiredError
	if errors.As(err, &ae) {
		return ae
	}
	return err
}
