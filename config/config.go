// Package config holds mcpproxy's configuration: its types and defaults, loading of both
// `mcpServers` forms, validation whose errors name the field, redaction for API responses,
// the diff used by hot reload, atomic saving, and the file watcher.
//
// The config file is the source of truth for server definitions and their enabled and
// quarantined flags. Everything else the daemon keeps lives in the store.
//
// # Usage
//
// Start-up: create the Watcher, then LoadOrCreate; keep the loaded Config as written (for
// saving) and run on a Normalize'd Clone.
//
// Apply (API or file change): Parse the bytes (it validates too); for API input, KeepRedacted
// against the current config; Compare the normalised old and new configs; Save (after telling
// the Watcher with Expect) and act on the Diff. GET /api/v1/config shows Marshal(Redact(c)).
//
// Values in env, headers, args and url may reference ${secret:NAME} and ${env:NAME}; Validate
// checks their syntax, References lists them and Expand (or Resolve) fills them in just before
// a server starts, so the resolved values never reach the file or an API response. Resolve
// also returns the server's Scrubber, which takes those values (and URL credentials) out of
// every error, stderr excerpt and log line about the server before it is stored or shown.
//
// # Concurrency
//
// Config values are plain data: safe to share read-only, Clone before changing one that others
// hold. Watcher documents its own rules.
package config

import (
	"encoding/json"
	"slices"
	"time"
)

// Redacted is what API responses show in place of a secret value. Sent back in an apply, it
// means "keep the current value".
const Redacted = "********"

// Defaults written here are applied by Normalize.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultToolsLimit         = 15
	DefaultCallToolTimeout    = 2 * time.Minute
	DefaultRestartConcurrency = 8
	DefaultDockerImage        = "node:22-slim"
	DefaultMaxMessageBytes    = 16 << 20 // see Config.MaxMessageBytes
	// FileName is the config file's name inside the data dir.
	FileName = "mcp_config.json"
)

// Config is the whole config file. Pointer fields distinguish "not set" from the zero value
// so that defaults can be applied and the file written back without inventing settings.
//
// MaxMessageBytes bounds one message read from any upstream: a JSON-RPC line of a stdio
// server, the body of an HTTP answer (error bodies too), one event of an SSE stream (the
// stream itself may run for ever). An upstream that sends more is disconnected and goes to
// error/backoff with last_error "answer exceeded max_message_bytes (N)". 0 means
// DefaultMaxMessageBytes (16 MiB); Validate allows 64 KiB to 1 GiB. A change applies to every
// upstream connection made after it (restart a server to apply it at once).
type Config struct {
	Listen         string   `json:"listen,omitempty"`
	DataDir        string   `json:"data_dir,omitempty"`
	APIKey         string   `json:"api_key,omitempty"`
	RequireMCPAuth *bool    `json:"require_mcp_auth,omitempty"`
	TrustedHosts   []string `json:"trusted_hosts,omitempty"`
	ToolsLimit     int      `json:"tools_limit,omitempty"`
	// MCPMode is what /mcp offers agents: MCPModeSearch (the default) the proxy's own
	// retrieve_tools, call_tool and upstream_servers; MCPModeDirect every reachable tool
	// listed as itself, as /mcp/all always does. Applies live to sessions opened after it.
	MCPMode string `json:"mcp_mode,omitempty"`
	// ToolNameSeparator joins a server's name and its tool's on /mcp/all
	// ("github__create_issue"). Default DefaultToolNameSeparator; see ValidToolNameSeparator.
	ToolNameSeparator string   `json:"tool_name_separator,omitempty"`
	CallToolTimeout   Duration `json:"call_tool_timeout,omitempty"`
	// RestartConcurrency is how many servers a bulk restart connects at once to begin
	// with; the window grows by one per restart that comes back ready, up to the
	// first-connect bound (128), and halves back towards this on failures
	// (actors/registry_restart.go). Default DefaultRestartConcurrency.
	RestartConcurrency int             `json:"restart_concurrency,omitempty"`
	MaxMessageBytes    int             `json:"max_message_bytes,omitempty"`
	DockerIsolation    DockerIsolation `json:"docker_isolation,omitzero"`
	Activity           Activity        `json:"activity,omitzero"`
	Metrics            Metrics         `json:"metrics,omitzero"`
	Servers            []ServerConfig  `json:"mcpServers"`
}

// Activity configures the activity log: the record of every tool call agents make through
// the MCP endpoints (actors/activity). Zero values mean the defaults; every field applies
// live.
//
//   - RecordArguments: store each call's arguments (with every resolved secret value
//     replaced, capped at 8 KiB); false stores none. Default true.
//   - MaxRecords: how many records are kept, the oldest dropped first. Default
//     DefaultActivityMaxRecords (100,000); Validate allows up to MaxActivityRecords.
//   - MaxAge: records older than this are dropped. Default DefaultActivityMaxAge (720h,
//     30 days).
type Activity struct {
	RecordArguments *bool    `json:"record_arguments,omitempty"`
	MaxRecords      int      `json:"max_records,omitempty"`
	MaxAge          Duration `json:"max_age,omitempty"`
}

// Metrics configures GET /metrics (the Prometheus text format). Open serves it without the
// API key, for a scraper that cannot send one; the default keeps it behind the key like
// the rest of the API.
type Metrics struct {
	Open bool `json:"open,omitempty"`
}

// Activity log defaults and bounds.
const (
	DefaultActivityMaxRecords = 100_000
	DefaultActivityMaxAge     = 720 * time.Hour
	MaxActivityRecords        = 10_000_000
)

// ArgumentsRecorded reports whether calls' arguments are stored (the default).
func (a Activity) ArgumentsRecorded() bool { return a.RecordArguments == nil || *a.RecordArguments }

// Records returns MaxRecords, or the default when unset.
func (a Activity) Records() int {
	if a.MaxRecords <= 0 {
		return DefaultActivityMaxRecords
	}
	return a.MaxRecords
}

// Age returns MaxAge, or the default when unset.
func (a Activity) Age() time.Duration {
	if a.MaxAge <= 0 {
		return DefaultActivityMaxAge
	}
	return time.Duration(a.MaxAge)
}

// DockerIsolation is the global default for running stdio servers in containers.
type DockerIsolation struct {
	Enabled      bool   `json:"enabled,omitempty"`
	DefaultImage string `json:"default_image,omitempty"`
}

// Isolation is a server's own Docker setting; it overrides DockerIsolation.
type Isolation struct {
	Enabled bool   `json:"enabled"`
	Image   string `json:"image,omitempty"`
	// Network is the docker network to join; empty means none ("--network none").
	Network string `json:"network,omitempty"`
}

// ServerConfig is one upstream MCP server.
type ServerConfig struct {
	Name        string            `json:"name"`
	Protocol    string            `json:"protocol,omitempty"` // stdio, http or sse; inferred when empty
	Command     string            `json:"command,omitempty"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	WorkingDir  string            `json:"working_dir,omitempty"`
	URL         string            `json:"url,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Enabled     *bool             `json:"enabled,omitempty"`
	Quarantined *bool             `json:"quarantined,omitempty"`
	Isolation   *Isolation        `json:"isolation,omitempty"`
	// OAuth is a pre-registered OAuth client for an http or sse server that requires the
	// MCP authorization flow. Without it the daemon uses a client ID metadata document where
	// the authorization server supports one, else dynamic client registration.
	OAuth *OAuth `json:"oauth,omitempty"`
	// DisabledTools names tools of this server (as the server names them, without the
	// "server:" prefix) that agents may neither see nor call, on /mcp and on
	// /mcp/server/{name}; the API lists them with "disabled": true. Like enabled and
	// quarantined it is a flag: changing it restarts nothing. A name the server does not
	// list (yet) is allowed and takes effect when it does.
	DisabledTools []string `json:"disabled_tools,omitempty"`
	// ProtocolVersion pins the MCP revision the daemon speaks to this server (one of
	// ProtocolVersions), or "latest" to let the two negotiate; empty is the daemon's
	// default, 2025-11-25. A server may answer faster on an older revision: the TypeScript
	// SDK's streamable-HTTP servers with resumability write a priming event before every
	// answer on 2025-11-25 (server-everything: 2.1 ms a call against 0.5 ms on 2025-06-18).
	// Changing it reconnects the server.
	ProtocolVersion string `json:"protocol_version,omitempty"`
}

// ProtocolVersions are the MCP revisions a server's protocol_version may pin, newest first
// (the ones mcp-go speaks; config_test holds the two lists together), and ProtocolLatest
// lets the daemon and the server negotiate.
var ProtocolVersions = []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// ProtocolLatest is the protocol_version that lets the daemon and the server negotiate.
const ProtocolLatest = "latest"

// ToolDisabled reports whether tool is in the server's disabled_tools.
func (s ServerConfig) ToolDisabled(tool string) bool { return slices.Contains(s.DisabledTools, tool) }

// OAuth is a server's pre-registered OAuth client. ClientSecret and PrivateKey may (and
// should) be ${secret:NAME} references; they are resolved like header values, redacted in
// config views and scrubbed from errors and logs. Scopes, when set, replace the scopes the server asks for.
// Grant picks the OAuth grant (see the field). ClientMetadataURL is the HTTPS URL of a client ID metadata document the user hosts; it is
// used as the client_id where the authorization server supports such documents.
type OAuth struct {
	ClientID          string   `json:"client_id,omitempty"`
	ClientSecret      string   `json:"client_secret,omitempty"`
	Scopes            []string `json:"scopes,omitempty"`
	ClientMetadataURL string   `json:"client_metadata_url,omitempty"`
	// PrivateKey is a PEM private key (EC P-256 or RSA; PKCS #8, SEC 1 or PKCS #1) with
	// which the client authenticates at the token endpoint by private_key_jwt (RFC 7523):
	// a JWT signed with it (iss and sub the client_id, aud the authorization server) in
	// place of a client secret. SigningAlg is ES256 or RS256, by default the one of the
	// key's type.
	PrivateKey string `json:"private_key,omitempty"`
	SigningAlg string `json:"signing_alg,omitempty"`
	// Grant is "authorization_code" (the default: a user logs in), "client_credentials"
	// (the MCP client-credentials extension: the daemon gets tokens with client_id and
	// client_secret or private_key by itself, without a user, when the server asks) or
	// "id_jag" (enterprise-managed authorization, SEP-990, also called cross-app access:
	// the daemon exchanges the user's ID token from the enterprise identity provider, IdP,
	// for an Identity Assertion JWT Authorization Grant and presents that at the server's
	// authorization server, again without a browser).
	Grant string `json:"grant,omitempty"`
	// IdP is the enterprise identity provider of the id_jag grant; it goes with that grant
	// only.
	IdP *IdP `json:"idp,omitempty"`
}

// Grants of OAuth.Grant.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantIDJAG             = "id_jag"
)

// SelfGrant reports whether the daemon gets the server's tokens by itself (no user, no
// browser): client_credentials and id_jag. Such a server is never given a login URL.
func (o *OAuth) SelfGrant() bool {
	return o != nil && (o.Grant == GrantClientCredentials || o.Grant == GrantIDJAG)
}

// oauthSecret is one secret-bearing field of an oauth entry: its path below the server entry
// and the value.
type oauthSecret struct {
	path string
	v    *string
}

// secretFields are the fields of o that hold credentials, in a fixed order: they may be
// references, are redacted, kept by an apply of the placeholder, resolved and scrubbed.
// Nil for a nil o.
func (o *OAuth) secretFields() []oauthSecret {
	if o == nil {
		return nil
	}
	f := []oauthSecret{{"oauth.client_secret", &o.ClientSecret}, {"oauth.private_key", &o.PrivateKey}}
	if o.IdP != nil {
		f = append(f, oauthSecret{"oauth.idp.client_secret", &o.IdP.ClientSecret}, oauthSecret{"oauth.idp.id_token", &o.IdP.IDToken})
	}
	return f
}

// IdP is the identity provider of the id_jag grant: where the daemon exchanges the user's ID
// token (RFC 8693 token exchange) for an ID-JAG. TokenEndpoint is its token endpoint; or
// Issuer, whose metadata (RFC 8414, else OpenID Connect discovery) names it; one of the two.
// ClientID (and ClientSecret, when the IdP's client has one) is the daemon's client at the
// IdP. IDToken is the user's ID token, as a ${secret:NAME} reference: it is read from the
// secret at every exchange, so renewing the secret (mcpproxy secrets set, or the secrets API,
// by a user or an outside process that follows the SSO session) is all an expired ID token
// takes. ClientSecret and IDToken are resolved, redacted and scrubbed like client_secret.
type IdP struct {
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
	ClientSecret  string `json:"client_secret,omitempty"`
	IDToken       string `json:"id_token,omitempty"`
}

// IsEnabled reports the enabled flag; a server is enabled unless its entry says otherwise.
func (s ServerConfig) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// IsQuarantined reports the quarantine flag; a server is quarantined unless its entry says
// "quarantined": false.
func (s ServerConfig) IsQuarantined() bool { return s.Quarantined == nil || *s.Quarantined }

// Duration is a time.Duration written in JSON as a Go duration string ("2m", "30s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// FieldError is one validation problem; Field is a path such as "mcpServers[2].command".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}
