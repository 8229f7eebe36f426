package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The client scenarios of the conformance suite (conformance list, client part) that the
// daemon takes part in, through test/confclient: it starts the real daemon with the
// scenario's server as an http upstream, logs in headlessly when the upstream needs it, and
// calls the upstream's tools through /mcp (or /mcp/server/{name} for elicitation).
var conformanceClientScenarios = []string{
	"initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry",
	"auth/metadata-default", "auth/metadata-var1", "auth/metadata-var2", "auth/metadata-var3",
	"auth/basic-cimd", "auth/scope-from-www-authenticate", "auth/scope-from-scopes-supported",
	"auth/scope-omitted-when-undefined", "auth/scope-step-up", "auth/scope-retry-limit",
	"auth/token-endpoint-auth-basic", "auth/token-endpoint-auth-post", "auth/token-endpoint-auth-none",
	"auth/pre-registration", "auth/2025-03-26-oauth-metadata-backcompat",
	"auth/2025-03-26-oauth-endpoint-fallback", "auth/resource-mismatch",
	"auth/offline-access-scope", "auth/offline-access-not-supported",
	"auth/client-credentials-basic", "auth/client-credentials-jwt",
	"auth/cross-app-access-complete-flow",
}

// Every client scenario the suite lists is run. auth/cross-app-access-complete-flow
// (SEP-990, enterprise-managed authorization) is the oauth "grant": "id_jag": the scenario
// hands the client the user's ID token from its identity provider (IdP), the IdP's issuer
// and the client ids and secret; confclient configures them (the ID token as a secret, set
// through the secrets API) and the daemon, by itself on the first 401, finds the IdP's token
// endpoint from its issuer, exchanges the ID token there for an ID-JAG (RFC 8693:
// subject_token_type id_token, requested_token_type id-jag, audience the authorization
// server's issuer, resource the MCP server) and presents that as a JWT bearer grant (RFC
// 7523, client_secret_basic) at the authorization server.

// TestConformanceClient runs every client scenario above; each must pass every check.
func TestConformanceClient(t *testing.T) {
	suite := conformanceCLI(t)
	cmdPath := filepath.Join(binaries(t), "confclient")
	for _, sc := range conformanceClientScenarios {
		t.Run(sc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, suite, "client", "--command", cmdPath, "--scenario", sc)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(suite)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "OVERALL: PASSED") {
				t.Errorf("scenario %s failed (%v):\n%s", sc, err, out)
			}
		})
	}
}
