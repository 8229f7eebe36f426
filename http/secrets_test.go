package http

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/doctor"
)

// fakeSecrets is a SecretsBackend over a map of values, so the test can check that handlers
// pass a value on and never echo it.
type fakeSecrets struct {
	values map[string]string
	err    error
}

var _ SecretsBackend = (*fakeSecrets)(nil)

func (f *fakeSecrets) meta(name string) actors.Secret {
	return actors.Secret{Name: name, CreatedAt: time.Unix(1, 0).UTC(), UpdatedAt: time.Unix(2, 0).UTC(), UsedBy: []string{"srv"}}
}

func (f *fakeSecrets) List(context.Context) ([]actors.Secret, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []actors.Secret
	for n := range f.values {
		out = append(out, f.meta(n))
	}
	return out, nil
}

func (f *fakeSecrets) Get(_ context.Context, name string) (actors.Secret, error) {
	if _, ok := f.values[name]; !ok {
		return actors.Secret{}, actors.Errorf(actors.CodeNotFound, "secret %q not found", name)
	}
	return f.meta(name), nil
}

func (f *fakeSecrets) Set(_ context.Context, name, value string) (actors.Secret, bool, []string, error) {
	_, existed := f.values[name]
	f.values[name] = value
	return f.meta(name), !existed, []string{"srv"}, nil
}

func (f *fakeSecrets) Delete(_ context.Context, name string) ([]string, error) {
	if _, ok := f.values[name]; !ok {
		return nil, actors.Errorf(actors.CodeNotFound, "secret %q not found", name)
	}
	delete(f.values, name)
	return []string{"srv"}, nil
}

// fakeOps answers every operations route with an error, to check the error path.
type fakeOps struct{ err error }

func (f fakeOps) Info(context.Context) (Info, error) { return Info{PID: 7}, f.err }
func (f fakeOps) Diagnostics(context.Context) (actors.Diagnostics, error) {
	return actors.Diagnostics{}, f.err
}
func (f fakeOps) Doctor(context.Context) (doctor.Report, error)      { return doctor.Report{}, f.err }
func (f fakeOps) DockerStatus(context.Context) (DockerStatus, error) { return DockerStatus{}, f.err }

func newOpsTestServer(sec SecretsBackend, ops OpsBackend) *Server {
	return New(Options{
		Settings: Settings{APIKey: "k"},
		Secrets:  sec,
		Ops:      ops,
	})
}

func serve(s *Server, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("X-API-Key", "k")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

func TestSecretsHandlers(t *testing.T) {
	const value = "handler-secret-value"
	sec := &fakeSecrets{values: map[string]string{}}
	s := newOpsTestServer(sec, fakeOps{})
	tests := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"create", "PUT", "/api/v1/secrets/TOKEN", `{"value":"` + value + `"}`, 201, `"restarted":["srv"]`},
		{"replace", "PUT", "/api/v1/secrets/TOKEN", `{"value":"` + value + `"}`, 200, `"used_by":["srv"]`},
		{"get", "GET", "/api/v1/secrets/TOKEN", "", 200, `"name":"TOKEN"`},
		{"list", "GET", "/api/v1/secrets", "", 200, `"secrets":[{"name":"TOKEN"`},
		{"bad name", "GET", "/api/v1/secrets/a%20b", "", 400, "INVALID_ARGUMENT"},
		{"empty value", "PUT", "/api/v1/secrets/TOKEN", `{"value":""}`, 400, "must not be empty"},
		{"no value", "PUT", "/api/v1/secrets/TOKEN", `{}`, 400, "INVALID_ARGUMENT"},
		{"not JSON", "PUT", "/api/v1/secrets/TOKEN", `value`, 400, "bad JSON"},
		{"delete", "DELETE", "/api/v1/secrets/TOKEN", "", 204, ""},
		{"delete again", "DELETE", "/api/v1/secrets/TOKEN", "", 404, "NOT_FOUND"},
		{"list empty", "GET", "/api/v1/secrets", "", 200, `{"secrets":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(s, tt.method, tt.path, tt.body)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Fatalf("%s %s: %d %s, want %d containing %q", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.contains)
			}
			if strings.Contains(rec.Body.String(), value) {
				t.Fatalf("the response echoes the secret value: %s", rec.Body)
			}
		})
	}
	if sec.values["TOKEN"] != "" {
		t.Fatalf("value left after delete: %q", sec.values["TOKEN"])
	}
}

func TestOpsHandlersMapErrors(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
	}{
		{nil, 200},
		{actors.Errorf(actors.CodeTimeout, "slow"), 504},
		{actors.Errorf(actors.CodeUnavailable, "shutting down"), 503},
		{errors.New("boom"), 500},
	} {
		s := newOpsTestServer(&fakeSecrets{values: map[string]string{}}, fakeOps{err: tt.err})
		for _, path := range []string{"/api/v1/info", "/api/v1/diagnostics", "/api/v1/doctor", "/api/v1/docker/status"} {
			if rec := serve(s, "GET", path, ""); rec.Code != tt.status {
				t.Errorf("GET %s with backend error %v: %d %s, want %d", path, tt.err, rec.Code, rec.Body, tt.status)
			}
		}
	}
	rec := serve(newOpsTestServer(&fakeSecrets{}, fakeOps{}), "GET", "/api/v1/info", "")
	if !strings.Contains(rec.Body.String(), `"pid":7`) {
		t.Errorf("info body: %s", rec.Body)
	}
	req := httptest.NewRequest("GET", "/api/v1/doctor", nil)
	rec = httptest.NewRecorder()
	newOpsTestServer(&fakeSecrets{}, fakeOps{}).Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("doctor without a key: %d", rec.Code)
	}
}
