package test

// This file loads oas/swagger.yaml for the contract tests: the document, a router that maps
// a request to its operation, and the checks the validating transport and the route test
// share.

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/mcpproxy/mcpproxy/oas"
)

// contractSpec is the loaded document and its router. Both are read-only once loaded, so
// one value serves every test and every concurrent request.
type contractSpec struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	specOnce   sync.Once
	loadedSpec *contractSpec
	specErr    error
)

// loadSpec parses, validates (examples included) and routes the embedded document once per
// test binary.
func loadSpec(t testing.TB) *contractSpec {
	t.Helper()
	specOnce.Do(func() {
		loadedSpec, specErr = parseSpec(oas.Spec)
	})
	if specErr != nil {
		t.Fatalf("oas/swagger.yaml: %v", specErr)
	}
	return loadedSpec
}

// parseSpec loads an OpenAPI document and builds its router. The document's servers are
// dropped first: the tests' daemons listen on random ports, and the legacy router would
// otherwise only match the documented server URLs.
func parseSpec(data []byte) (*contractSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi is %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &contractSpec{doc: doc, router: router}, nil
}

// authPresent is the openapi3filter AuthenticationFunc: it checks that the request presents
// a credential in the place the security scheme names. Whether the key is right is the
// daemon's business (a wrong key must get a documented 401); the spec only says where a key
// goes.
func authPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	sch := in.SecurityScheme
	switch {
	case sch.Type == "apiKey" && sch.In == "header":
		if r.Header.Get(sch.Name) == "" {
			return fmt.Errorf("no %s header", sch.Name)
		}
	case sch.Type == "apiKey" && sch.In == "query":
		if r.URL.Query().Get(sch.Name) == "" {
			return fmt.Errorf("no %s query parameter", sch.Name)
		}
	case sch.Type == "http" && strings.EqualFold(sch.Scheme, "bearer"):
		a := r.Header.Get("Authorization")
		if len(a) <= 7 || !strings.EqualFold(a[:7], "bearer ") {
			return fmt.Errorf("no bearer token")
		}
	default:
		return fmt.Errorf("security scheme %q is not understood by the contract tests", in.SecuritySchemeName)
	}
	return nil
}

// schemaOpts are the options for validating a value against a schema of a 3.1 document, as
// openapi3filter does for response bodies.
func schemaOpts() []openapi3.SchemaValidationOption {
	return []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse(), openapi3.MultiErrors()}
}

// checkErrorEnvelope validates a decoded body against components/schemas/Error.
func (s *contractSpec) checkErrorEnvelope(v any) error {
	ref := s.doc.Components.Schemas["Error"]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("the spec has no Error schema")
	}
	return ref.Value.VisitJSON(v, schemaOpts()...)
}

// specRoute is one documented operation: a path template and a method.
type specRoute struct{ Method, Path string }

// operations lists every documented operation.
func (s *contractSpec) operations() []specRoute {
	var out []specRoute
	for path, item := range s.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, specRoute{Method: strings.ToUpper(method), Path: path})
		}
	}
	return out
}

// ginParam matches gin's path parameters, :name and *name.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// specPath turns a gin route path into an OpenAPI path template: /servers/:name becomes
// /servers/{name}, and a catch-all /x/*rest becomes /x/{rest}.
func specPath(ginPath string) string {
	return ginParam.ReplaceAllString(ginPath, "{$1}")
}

// anyMethods are the methods gin's RouterGroup.Any registers; a path that has all of them is
// an Any route.
var anyMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodHead,
	http.MethodOptions, http.MethodDelete, http.MethodConnect, http.MethodTrace,
}
