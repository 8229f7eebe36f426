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
}

// Scenarios the daemon does not run, and why:
//   - auth/cross-app-access-complete-flow (SEP-990, enterprise-managed authorization): the
//     client holds an ID token from the enterprise identity provider, exchanges it at the
//     IdP's token endpoint (RFC 8693: subject_token_type id_token, requested_token_type
//     id-jag, audience the authorization server's issuer, resource the MCP server) for an
//     ID-JAG, and presents that in a JWT bearer grant (RFC 7523, grant_type jwt-bearer,
//     client_secret_basic) at the authorization server. A daemon can take part only when
//     it is given that ID token (config: the IdP's token endpoint and client id, the ID
//     token as a secret, the client's id and secret); the ID token comes from a user's SSO
//     login to the IdP and expires (an hour in the scenario), so it would have to be
//     renewed from outside. Not built yet: no such config exists, so the scenario fails
//     at the first 401 (the daemon has no client to log in with).

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
