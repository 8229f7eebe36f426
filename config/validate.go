package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Protocols a server may name.
const (
	ProtocolStdio = "stdio"
	ProtocolHTTP  = "http"
	ProtocolSSE   = "sse"
)

// NamePattern is what a server name must match: it appears in tool names ("server:tool"), URL
// paths (/mcp/server/{name}) and log lines, so it is kept to a safe, short alphabet.
const NamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var nameRE = MustNameMatcher(NamePattern)

// ValidName reports whether name is acceptable as a server name (see NamePattern).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Limits checked by Validate.
const (
	MaxToolsLimit         = 1000
	MaxRestartConcurrency = 256
	// MinMessageBytes and MaxMessageBytesLimit bound max_message_bytes: below 64 KiB
	// ordinary tool lists no longer fit; above 1 GiB the limit no longer protects the
	// daemon's memory.
	MinMessageBytes      = 64 << 10
	MaxMessageBytesLimit = 1 << 30
)

// Validate checks a config and returns every problem found, each naming its field path
// ("mcpServers[2].command", "listen", "call_tool_timeout"); nil means valid. It checks:
//
//   - server names: present, unique, and matching NamePattern
//     (^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$);
//   - each server has exactly one of command and url, and a protocol ("stdio", "http" or "sse",
//     or empty to infer it) consistent with it: stdio needs a command, http and sse need an
//     absolute http(s) url;
//   - oauth is set only on http and sse servers, a client_secret or private_key comes with
//     its client_id (never both), signing_alg is ES256 or RS256 and goes with a private_key,
//     client_credentials has its client authentication, id_jag its client_id and idp (which
//     goes with id_jag only and has token_endpoint or issuer, https or loopback http, its
//     client_id and id_token), and client_metadata_url is https;
//   - isolation is enabled only on stdio servers, and Docker image and network names cannot be
//     read as docker options;
//   - env names, header names and values are well formed (no '=', CR, LF or NUL where they
//     would break the process environment or the HTTP request);
//   - ${secret:NAME} and ${env:NAME} references in env, headers, args, url,
//     oauth.client_secret, oauth.private_key, oauth.idp.client_secret and oauth.idp.id_token
//     are well formed;
//   - listen is host:port, tools_limit is 0..1000, restart_concurrency is 0..256,
//     call_tool_timeout is not negative, max_message_bytes is 0 or 64 KiB..1 GiB,
//     trusted_hosts has no empty entries;
//   - activity.max_records is 0..MaxActivityRecords and activity.max_age is not negative.
//
// Zero values mean "use the default" (see Normalize), so an unnormalised config validates.
func (c *Config) Validate() []FieldError {
	var v validator
	if c.Listen != "" {
		v.listen("listen", c.Listen)
	}
	if strings.ContainsFunc(c.APIKey, unicode.IsControl) {
		v.fail("api_key", "must not contain control characters")
	}
	for i, h := range c.TrustedHosts {
		if strings.TrimSpace(h) == "" || strings.ContainsFunc(h, unicode.IsSpace) {
			v.fail(fmt.Sprintf("trusted_hosts[%d]", i), "want a host name or address without spaces")
		}
	}
	if c.ToolsLimit < 0 || c.ToolsLimit > MaxToolsLimit {
		v.fail("tools_limit", "must be between 0 and %d (0 means the default, %d)", MaxToolsLimit, DefaultToolsLimit)
	}
	if c.MCPMode != "" && c.MCPMode != MCPModeSearch && c.MCPMode != MCPModeDirect {
		v.fail("mcp_mode", "want %q or %q", MCPModeSearch, MCPModeDirect)
	}
	if c.ToolNameSeparator != "" && !ValidToolNameSeparator(c.ToolNameSeparator) {
		v.fail("tool_name_separator", "want 1 to %d of the characters MCP allows in tool names (A-Z a-z 0-9 _ . -)", MaxToolNameSeparator)
	}
	if c.CallToolTimeout < 0 {
		v.fail("call_tool_timeout", "must not be negative")
	}
	if c.RestartConcurrency < 0 || c.RestartConcurrency > MaxRestartConcurrency {
		v.fail("restart_concurrency", "must be between 0 and %d (0 means the default, %d)", MaxRestartConcurrency, DefaultRestartConcurrency)
	}
	if m := c.MaxMessageBytes; m != 0 && (m < MinMessageBytes || m > MaxMessageBytesLimit) {
		v.fail("max_message_bytes", "must be between %d (64 KiB) and %d (1 GiB), or 0 for the default, %d (16 MiB)",
			MinMessageBytes, MaxMessageBytesLimit, DefaultMaxMessageBytes)
	}
	v.dockerName("docker_isolation.default_image", c.DockerIsolation.DefaultImage)
	if n := c.Activity.MaxRecords; n < 0 || n > MaxActivityRecords {
		v.fail("activity.max_records", "must be between 0 and %d (0 means the default, %d)", MaxActivityRecords, DefaultActivityMaxRecords)
	}
	if c.Activity.MaxAge < 0 {
		v.fail("activity.max_age", "must not be negative (0 means the default, %s)", DefaultActivityMaxAge)
	}

	firstUse := make(map[string]int, len(c.Servers))
	for i, s := range c.Servers {
		path := fmt.Sprintf("mcpServers[%d]", i)
		switch {
		case s.Name == "":
			v.fail(path+".name", "required")
		case !ValidName(s.Name):
			v.fail(path+".name", "%q is not a valid name: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters", clip(s.Name))
		}
		if j, dup := firstUse[s.Name]; dup && s.Name != "" {
			v.fail(path+".name", "duplicate name %q (also mcpServers[%d])", s.Name, j)
		} else {
			firstUse[s.Name] = i
		}
		v.server(path, s)
	}
	return v.errs
}

type validator struct {
	errs []FieldError
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) listen(path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(path, "want host:port, e.g. %q", DefaultListen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail(path, "port %q must be a number from 0 to 65535", port)
	}
}

// dockerName rejects image and network names that docker would read as an option (a leading
// '-') or split (spaces): both end up on a docker command line.
// idp checks the identity provider of the id_jag grant: it goes with that grant only, has
// one of token_endpoint and issuer (an https URL; http only on a loopback host, which never
// leaves the machine: the ID token must not cross a network in clear), its client_id and the
// ID token.
func (v *validator) idp(path, grant string, p *IdP) {
	if grant != GrantIDJAG {
		v.fail(path, "idp goes with \"grant\": %q only", GrantIDJAG)
	}
	switch {
	case p.TokenEndpoint == "" && p.Issuer == "":
		v.fail(path+".token_endpoint", "set token_endpoint, or issuer to discover it")
	case p.TokenEndpoint != "" && p.Issuer != "":
		v.fail(path+".issuer", "set token_endpoint or issuer, not both")
	}
	for _, f := range []struct{ name, value string }{{"token_endpoint", p.TokenEndpoint}, {"issuer", p.Issuer}} {
		if f.value != "" && !SecureURL(f.value) {
			v.fail(path+"."+f.name, "must be an absolute https URL (http only on localhost), got %q", RedactURL(f.value))
		}
	}
	if p.ClientID == "" {
		v.fail(path+".client_id", "the daemon's client_id at the identity provider is required")
	}
	if p.ClientSecret != "" && p.ClientID == "" {
		v.fail(path+".client_secret", "a client_secret needs its client_id")
	}
	if p.IDToken == "" {
		v.fail(path+".id_token", "the user's ID token is required, best as a ${secret:NAME} reference")
	}
}

// SecureURL reports whether raw is an absolute https URL, or http on a loopback host (which
// never leaves the machine): where a credential such as an ID token may be sent.
func SecureURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false
}

func (v *validator) dockerName(path, name string) {
	if strings.HasPrefix(name, "-") || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		v.fail(path, "%q is not a valid docker name", clip(name))
	}
}

func (v *validator) server(path string, s ServerConfig) {
	hasCmd, hasURL := s.Command != "", s.URL != ""
	proto := s.EffectiveProtocol()
	knownProto := true
	switch s.Protocol {
	case "", ProtocolStdio, ProtocolHTTP, ProtocolSSE:
	default:
		knownProto = false
		v.fail(path+".protocol", "%q is not a protocol: want %q, %q or %q", clip(s.Protocol), ProtocolStdio, ProtocolHTTP, ProtocolSSE)
	}
	switch {
	case !hasCmd && !hasURL:
		if proto == ProtocolHTTP || proto == ProtocolSSE {
			v.fail(path+".url", "protocol %q needs a url", proto)
		} else {
			v.fail(path+".command", "command (stdio) or url (http, sse) is required")
		}
	case hasCmd && hasURL:
		v.fail(path+".url", "set either command (stdio) or url (http, sse), not both")
	case !knownProto:
	case proto == ProtocolStdio && !hasCmd:
		v.fail(path+".command", "protocol %q needs a command, not a url", proto)
	case proto != ProtocolStdio && !hasURL:
		v.fail(path+".url", "protocol %q needs a url, not a command", proto)
	}
	if hasURL {
		if err := checkURL(s.URL); err != nil {
			v.fail(path+".url", "%s", err)
		}
	}
	if pv := s.ProtocolVersion; pv != "" && pv != ProtocolLatest && !slices.Contains(ProtocolVersions, pv) {
		v.fail(path+".protocol_version", "unknown MCP revision %q: use one of %s, or %q", pv,
			strings.Join(ProtocolVersions, ", "), ProtocolLatest)
	}
	for _, f := range []struct{ name, value string }{{"command", s.Command}, {"working_dir", s.WorkingDir}} {
		if strings.ContainsRune(f.value, 0) {
			v.fail(path+"."+f.name, "must not contain NUL")
		}
	}
	if s.OAuth != nil {
		if proto != ProtocolHTTP && proto != ProtocolSSE {
			v.fail(path+".oauth", "only http and sse servers use OAuth; this one is %q", proto)
		}
		if s.OAuth.ClientSecret != "" && s.OAuth.ClientID == "" {
			v.fail(path+".oauth.client_id", "a client_secret needs its client_id")
		}
		if s.OAuth.PrivateKey != "" && s.OAuth.ClientID == "" {
			v.fail(path+".oauth.client_id", "a private_key needs its client_id")
		}
		if s.OAuth.PrivateKey != "" && s.OAuth.ClientSecret != "" {
			v.fail(path+".oauth.private_key", "a client authenticates with a client_secret or a private_key, not both")
		}
		switch s.OAuth.SigningAlg {
		case "", "ES256", "RS256":
			if s.OAuth.SigningAlg != "" && s.OAuth.PrivateKey == "" {
				v.fail(path+".oauth.signing_alg", "signing_alg goes with a private_key")
			}
		default:
			v.fail(path+".oauth.signing_alg", "want ES256 or RS256, got %q", s.OAuth.SigningAlg)
		}
		switch s.OAuth.Grant {
		case "", "authorization_code":
		case GrantClientCredentials:
			if s.OAuth.ClientID == "" || (s.OAuth.ClientSecret == "" && s.OAuth.PrivateKey == "") {
				v.fail(path+".oauth.grant", "client_credentials needs client_id and client_secret or private_key")
			}
		case GrantIDJAG:
			if s.OAuth.ClientID == "" {
				v.fail(path+".oauth.client_id", "the id_jag grant needs the client_id the identity provider issues the grant for")
			}
			if s.OAuth.IdP == nil {
				v.fail(path+".oauth.idp", "the id_jag grant needs its identity provider (token_endpoint or issuer, client_id, id_token)")
			}
		default:
			v.fail(path+".oauth.grant", "want authorization_code, client_credentials or id_jag, got %q", s.OAuth.Grant)
		}
		if s.OAuth.IdP != nil {
			v.idp(path+".oauth.idp", s.OAuth.Grant, s.OAuth.IdP)
		}
		if u := s.OAuth.ClientMetadataURL; u != "" && !strings.HasPrefix(u, "https://") {
			v.fail(path+".oauth.client_metadata_url", "must be an https URL")
		}
	}
	if s.Isolation != nil {
		if s.Isolation.Enabled && (proto == ProtocolHTTP || proto == ProtocolSSE) {
			v.fail(path+".isolation", "only stdio servers can run in Docker; this one is %q", proto)
		}
		v.dockerName(path+".isolation.image", s.Isolation.Image)
		v.dockerName(path+".isolation.network", s.Isolation.Network)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		val := s.Env[k]
		switch {
		case k == "":
			v.fail(path+".env", "empty variable name")
		case strings.ContainsAny(k, "=\x00"):
			v.fail(path+"."+joinPath("env", k), "variable name must not contain '=' or NUL")
		case strings.ContainsRune(val, 0):
			v.fail(path+"."+joinPath("env", k), "value must not contain NUL")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		val := s.Headers[k]
		switch {
		case !validHeaderName(k):
			v.fail(path+"."+joinPath("headers", k), "invalid header name")
		case strings.ContainsAny(val, "\r\n\x00"):
			v.fail(path+"."+joinPath("headers", k), "header value must not contain CR, LF or NUL")
		}
	}
	seenTool := map[string]bool{}
	for i, name := range s.DisabledTools {
		p := fmt.Sprintf("%s.disabled_tools[%d]", path, i)
		switch {
		case strings.TrimSpace(name) == "":
			v.fail(p, "empty tool name")
		case strings.ContainsRune(name, 0):
			v.fail(p, "must not contain NUL")
		case seenTool[name]:
			v.fail(p, "%q is listed twice", clip(name))
		}
		seenTool[name] = true
	}
	s.eachRefField(func(field, value string) {
		if strings.HasPrefix(field, "args[") && strings.ContainsRune(value, 0) {
			v.fail(path+"."+field, "must not contain NUL")
		}
		if _, err := scanRefs(value); err != nil {
			v.fail(path+"."+field, "%s", err)
		}
	})
}

// checkURL requires an absolute http or https URL. References stand in for text that is only
// known after expansion, so they are replaced by a placeholder first; a URL that starts with a
// reference (the whole URL or its scheme comes from a secret or variable) cannot be checked
// until then and is accepted.
func checkURL(raw string) error {
	refs, err := scanRefs(raw)
	if err != nil {
		return nil // reported with the other reference errors
	}
	var b strings.Builder
	last := 0
	for _, r := range refs {
		b.WriteString(raw[last:r.start])
		b.WriteString("ref")
		last = r.end
	}
	b.WriteString(raw[last:])
	if len(refs) > 0 && refs[0].start == 0 {
		return nil
	}
	u, err := url.Parse(b.String())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", clip(RedactURL(raw)))
	}
	return nil
}

// validHeaderName reports whether k is an HTTP token (RFC 9110 section 5.6.2).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// EffectiveProtocol is the server's protocol, inferred when empty: a command means stdio, a url
// means http. It is empty when neither is set.
func (s ServerConfig) EffectiveProtocol() string {
	switch {
	case s.Protocol != "":
		return s.Protocol
	case s.Command != "":
		return ProtocolStdio
	case s.URL != "":
		return ProtocolHTTP
	}
	return ""
}
