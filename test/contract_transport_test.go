package test

// The validating transport: every request the end-to-end tests send through it, and every
// response they get, is checked against oas/swagger.yaml, so the whole suite doubles as a
// contract test of the spec.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// maxValidatedBody bounds how much of a response body the transport reads to validate it;
// the largest legitimate answers (the Swagger UI bundle, big configs) are a few MiB.
const maxValidatedBody = 64 << 20

// validatingTransport wraps base (nil means http.DefaultTransport) so that every exchange is
// checked against oas/swagger.yaml. It fails t (Errorf, so the test goes on) when:
//
//   - the response has a status the spec does not document for the operation;
//   - a JSON response body does not match its schema (a missing required field, a wrong
//     type, an undocumented field where the object is closed, a value outside its enum);
//   - the daemon answered 2xx to a request the spec says is invalid (a bad parameter, a body
//     that does not match, no credential where one is required);
//   - the route is not in the spec but the daemon served it (anything but 404/405 with the
//     error envelope, or a trailing-slash redirect);
//   - a streaming response (text/event-stream, and everything on /mcp) has an undocumented
//     status or content type. Streaming bodies are passed through unread.
//
// Requests that the spec calls invalid are expected in tests of error paths, so they fail
// nothing by themselves. Reports stop when t's cleanup runs, so a stream that outlives its
// test cannot fail it afterwards. Query parameters named apikey are masked in reports.
func validatingTransport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	if base == nil {
		base = http.DefaultTransport
	}
	ct := &contractTransport{t: t, base: base, spec: loadSpec(t)}
	t.Cleanup(ct.stop)
	return ct
}

// contractTransport is the RoundTripper validatingTransport returns.
type contractTransport struct {
	t    testing.TB
	base http.RoundTripper
	spec *contractSpec

	mu        sync.Mutex
	stopped   bool
	exchanges []exchange
}

// exchange is the record of one request and its response.
type exchange struct {
	Method    string
	URL       string // path and query, apikey masked
	Operation string // operationId; empty when the route is not in the spec
	Status    int
	Streamed  bool // the body was passed through without validation
	// RequestProblem is why the spec calls the request invalid (not a failure by itself).
	RequestProblem string
	// Problems are the contract violations reported to t.
	Problems []string
}

func (ct *contractTransport) stop() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.stopped = true
}

// CloseIdleConnections closes the base transport's idle connections, so that
// http.Client.CloseIdleConnections (the harness calls it when a daemon stops) reaches them.
func (ct *contractTransport) CloseIdleConnections() {
	if c, ok := ct.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Exchanges returns a copy of what the transport has seen so far.
func (ct *contractTransport) Exchanges() []exchange {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return append([]exchange(nil), ct.exchanges...)
}

func (ct *contractTransport) record(ex exchange) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.exchanges = append(ct.exchanges, ex)
	if ct.stopped {
		return
	}
	for _, p := range ex.Problems {
		ct.t.Errorf("contract (oas/swagger.yaml): %s %s -> %d: %s", ex.Method, ex.URL, ex.Status, p)
	}
}

// RoundTrip sends req through the base transport and checks the exchange.
func (ct *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := drainRequestBody(req)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	withBody(out, body)

	ex := exchange{Method: req.Method, URL: maskedURL(req)}
	vreq := req.Clone(context.Background())
	withBody(vreq, body)
	route, params, routeErr := ct.spec.router.FindRoute(vreq)
	var reqErr error
	if routeErr == nil {
		ex.Operation = route.Operation.OperationID
		reqErr = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: authPresent, MultiError: true, SkipSettingDefaults: true},
		})
		if reqErr != nil {
			ex.RequestProblem = oneLine(reqErr)
		}
	}

	resp, err := ct.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	ex.Status = resp.StatusCode
	if routeErr != nil {
		ct.checkUnrouted(&ex, resp, routeErr)
	} else {
		ct.checkRouted(&ex, vreq, route, params, reqErr, resp)
	}
	ct.record(ex)
	return resp, nil
}

// checkUnrouted checks the answer to a request the spec has no operation for: the daemon
// must refuse it with the error envelope (404 unknown path, 405 wrong method), or redirect
// it to the path with a trailing slash, or stop it at the Host guard (403) which runs before
// routing.
func (ct *contractTransport) checkUnrouted(ex *exchange, resp *http.Response, routeErr error) {
	if isRedirect(resp) {
		return
	}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusForbidden:
	default:
		ex.Problems = append(ex.Problems, fmt.Sprintf("the route is not in the spec (%v) but the daemon served it", routeErr))
		return
	}
	if ex.Method == http.MethodHead {
		return
	}
	data, err := bufferBody(resp)
	if err != nil {
		ex.Problems = append(ex.Problems, fmt.Sprintf("reading the body: %v", err))
		return
	}
	if p := ct.envelopeProblem(resp.Header.Get("Content-Type"), data); p != "" {
		ex.Problems = append(ex.Problems, p)
	}
}

// lenientBody reports whether every problem of an invalid request is with its body while
// the operation documents its body with an unconstrained schema: such an operation (config
// validate) takes any body and reports its problems in a 2xx answer, as its description says.
func lenientBody(route *routers.Route, reqErr error) bool {
	rb := route.Operation.RequestBody
	if rb == nil || rb.Value == nil {
		return false
	}
	for _, mt := range rb.Value.Content {
		if mt.Schema == nil || mt.Schema.Value == nil || !unconstrained(mt.Schema.Value) {
			return false
		}
	}
	errs := []error{reqErr}
	if me, isMulti := reqErr.(openapi3.MultiError); isMulti {
		errs = me
	}
	for _, err := range errs {
		var re *openapi3filter.RequestError
		if !errors.As(err, &re) || re.RequestBody == nil {
			return false
		}
	}
	return true
}

// unconstrained reports a schema that allows any value (it may still describe one).
func unconstrained(s *openapi3.Schema) bool {
	return s.Type == nil && len(s.Properties) == 0 && len(s.AllOf) == 0 && len(s.AnyOf) == 0 &&
		len(s.OneOf) == 0 && s.Not == nil && len(s.Required) == 0 && len(s.Enum) == 0 && s.Const == nil
}

// isRedirect reports a redirect with a Location, which the spec describes in general (a
// path without its trailing slash) rather than per operation.
func isRedirect(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return resp.Header.Get("Location") != ""
	}
	return false
}

// envelopeProblem says what is wrong with an error response that should be the envelope.
func (ct *contractTransport) envelopeProblem(contentType string, data []byte) string {
	if mt, _, _ := mime.ParseMediaType(contentType); mt != "application/json" {
		return fmt.Sprintf("error response has Content-Type %q, want application/json with the error envelope", contentType)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Sprintf("error response is not JSON: %v; body %s", err, snippet(data))
	}
	if err := ct.spec.checkErrorEnvelope(v); err != nil {
		return fmt.Sprintf("error response is not the error envelope: %s; body %s", oneLine(err), snippet(data))
	}
	return ""
}

// checkRouted checks the answer to a documented operation.
func (ct *contractTransport) checkRouted(ex *exchange, vreq *http.Request, route *routers.Route, params map[string]string, reqErr error, resp *http.Response) {
	if isRedirect(resp) {
		return // gin's trailing-slash redirect (/swagger to /swagger/); the client follows it
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if reqErr != nil && ok && !lenientBody(route, reqErr) {
		ex.Problems = append(ex.Problems, fmt.Sprintf("the daemon accepted a request the spec calls invalid: %s", oneLine(reqErr)))
	}
	responses := route.Operation.Responses
	documented := responses.Status(resp.StatusCode)
	if documented == nil {
		documented = responses.Default()
	}
	if documented == nil {
		ex.Problems = append(ex.Problems, fmt.Sprintf("status %d is not documented for %s", resp.StatusCode, route.Operation.OperationID))
		return
	}
	if vreq.Method == http.MethodHead || resp.StatusCode == http.StatusNotModified {
		return // no body to check
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	contentType := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(contentType)
	if !isJSON(mt) || strings.HasPrefix(route.Path, "/mcp") {
		// Streams, pages, scripts and the YAML document: the status, headers and content
		// type are checked; the body is not JSON to validate (or must not be waited for).
		ex.Streamed = true
		content := documented.Value.Content
		if contentType != "" && len(content) > 0 && content.Get(contentType) == nil {
			ex.Problems = append(ex.Problems, fmt.Sprintf("Content-Type %q is not documented for status %d", contentType, resp.StatusCode))
		}
		input.Options.ExcludeResponseBody = true
		input.Body = http.NoBody
		if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
			ex.Problems = append(ex.Problems, oneLine(err))
		}
		return
	}
	data, err := bufferBody(resp)
	if err != nil {
		ex.Problems = append(ex.Problems, fmt.Sprintf("reading the body: %v", err))
		return
	}
	input.SetBodyBytes(data)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		ex.Problems = append(ex.Problems, fmt.Sprintf("%s; body %s", oneLine(err), snippet(data)))
	}
}

// isJSON reports whether a media type carries JSON.
func isJSON(mediaType string) bool {
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

// drainRequestBody reads and closes req.Body (a RoundTripper must close it) and returns its
// bytes; nil when there is no body.
func drainRequestBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	data, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("contract transport: reading the request body: %w", err)
	}
	return data, nil
}

// withBody gives r a fresh reader over body (and GetBody, for redirects and retries).
func withBody(r *http.Request, body []byte) {
	if body == nil {
		r.Body = http.NoBody
		r.GetBody = nil
		return
	}
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.Body, _ = r.GetBody()
}

// bufferBody reads a response body (bounded) and puts the bytes back for the caller. A read
// error is kept for the caller too: the body replays what arrived, then fails the same way.
func bufferBody(resp *http.Response) ([]byte, error) {
	orig := resp.Body
	data, err := io.ReadAll(io.LimitReader(orig, maxValidatedBody+1))
	orig.Close()
	if err == nil && len(data) > maxValidatedBody {
		err = fmt.Errorf("body over %d bytes", maxValidatedBody)
	}
	if err != nil {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(data), errReader{err}))
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return data, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// maskedURL is the request's path and query with any apikey value masked, for reports.
func maskedURL(r *http.Request) string {
	u := *r.URL
	q := u.Query()
	if q.Has("apikey") {
		q.Set("apikey", "***")
		u.RawQuery = q.Encode()
	}
	if u.RawQuery == "" {
		return u.Path
	}
	return u.Path + "?" + u.RawQuery
}

// oneLine flattens an error (a MultiError lists its parts with " | ") for a one-line report,
// leaving out the schema dumps kin-openapi appends (" Schema: {...} Value: ..."): the path
// and reason name the problem, and the body follows in the report.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	for {
		i := strings.Index(s, " Schema: {")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], " Value: ")
		if j < 0 {
			return s[:i]
		}
		s = s[:i] + s[i+j:]
	}
}

// snippet is the start of a body, for reports.
func snippet(data []byte) string {
	const max = 600
	if len(data) > max {
		return fmt.Sprintf("%q...", data[:max])
	}
	return fmt.Sprintf("%q", data)
}
