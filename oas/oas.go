// Package oas holds mcpproxy's OpenAPI 3.1 document, swagger.yaml: the complete reference of
// the daemon's HTTP surface (REST API, /events, /mcp, health, Swagger UI, dashboard). It is
// embedded in the binary and served at /swagger/swagger.yaml; the end-to-end suite checks
// every request and response against it, and a contract test keeps it and the router's
// routes equal.
//
// # Writing the spec
//
// The document is OpenAPI 3.1 and uses JSON Schema 2020-12 forms: a nullable value is
// `type: [string, "null"]` (never the 3.0 `nullable`), a closed object built with allOf uses
// `unevaluatedProperties: false`. kin-openapi, which the tests validate with, handles these
// (openapi3filter turns on its JSON Schema 2020-12 validator for 3.1 documents).
//
// Lint, from the repository root after `npm ci` in test/:
//
//	npx --prefix test redocly lint --config oas/redocly.yaml oas/swagger.yaml
package oas

import _ "embed"

// Spec is swagger.yaml as embedded at build time.
//
//go:embed swagger.yaml
var Spec []byte
