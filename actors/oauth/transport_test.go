package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedTokens is a TokenStore for requests that run at once.
type lockedTokens struct {
	mu sync.Mutex
	t  *Tokens
}

func (s *lockedTokens) Get() (*Tokens, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t == nil {
		return nil, nil
	}
	c := *s.t
	return &c, nil
}

func (s *lockedTokens) Put(t *Tokens) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t = t
	return nil
}

// TestTransportRegrant: a token without a refresh token that is about to expire is renewed
// by Regrant before the request, once for requests that run at once, and the request goes
// out with the new token; a Regrant that fails leaves the old token (and the 401 path), and
// is not asked again for that token.
func TestTransportRegrant(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	mcp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer granted-2" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer mcp.Close()
	now := time.Now()
	st := &lockedTokens{t: &Tokens{URL: mcp.URL, AccessToken: "granted-1", Issued: now.Add(-time.Hour), Expiry: now.Add(time.Second)}}
	var grants, changes atomic.Int32
	release := make(chan struct{})
	tr := &Transport{Base: http.DefaultTransport, Store: st, URL: mcp.URL, OnChange: func() { changes.Add(1) }}
	tr.Regrant = func(ctx context.Context) error {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > regrantWait {
			t.Errorf("Regrant's context is not bounded by regrantWait")
		}
		grants.Add(1)
		<-release // the other request waits for this renewal or reads its tokens
		return st.Put(&Tokens{URL: mcp.URL, AccessToken: "granted-2", Issued: time.Now(), Expiry: time.Now().Add(time.Hour)})
	}
	hc := &http.Client{Transport: tr}
	get := func() int {
		resp, err := hc.Get(mcp.URL)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := make(chan int, 2)
	for range 2 {
		go func() { codes <- get() }()
	}
	// The first request holds the renewal; release it once Regrant was called.
	deadline := time.After(10 * time.Second)
	for grants.Load() == 0 {
		select {
		case <-deadline:
			t.Fatal("Regrant was not called for a token about to expire")
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(release)
	for range 2 {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("a request after the renewal answered %d", c)
		}
	}
	if g := grants.Load(); g != 1 {
		t.Errorf("Regrant called %d times, want once for the two requests", g)
	}
	if changes.Load() != 1 || tr.AuthRequired() != nil {
		t.Errorf("OnChange %d times (want 1), AuthRequired %v", changes.Load(), tr.AuthRequired())
	}
	mu.Lock()
	if len(sent) != 2 || sent[0] != "Bearer granted-2" || sent[1] != "Bearer granted-2" {
		t.Errorf("sent %q, want the renewed token twice", sent)
	}
	mu.Unlock()

	// A renewal that fails: the old token goes out, the 401 asks for a login, and the next
	// request with the same token does not ask for a renewal again.
	_ = st.Put(&Tokens{URL: mcp.URL, AccessToken: "granted-3", Expiry: time.Now().Add(-time.Second)})
	grants.Store(0)
	tr.Regrant = func(context.Context) error { grants.Add(1); return errors.New("budget spent") }
	if c := get(); c != http.StatusUnauthorized || tr.AuthRequired() == nil {
		t.Errorf("after a failed renewal: %d, AuthRequired %v", c, tr.AuthRequired())
	}
	get()
	if g := grants.Load(); g != 1 {
		t.Errorf("Regrant called %d times for one token, want 1", g)
	}
	mu.Lock()
	if last := sent[len(sent)-1]; last != "Bearer granted-3" {
		t.Errorf("after a failed renewal sent %q, want the old token", last)
	}
	mu.Unlock()

	// A token with a refresh token is refreshed, not granted again; one without a known
	// expiry is never renewed before a 401.
	_ = st.Put(&Tokens{URL: mcp.URL, AccessToken: "granted-4"})
	get()
	if g := grants.Load(); g != 1 {
		t.Errorf("Regrant called for a token without an expiry")
	}
}

// TestRenewDue: a token is renewed refreshSkew before it expires; by Regrant, in the second
// half of its life when it lives less than twice that.
func TestRenewDue(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name             string
		tok              *Tokens
		refresh, regrant bool
	}{
		{"no expiry", &Tokens{AccessToken: "a"}, false, false},
		{"an hour left", &Tokens{Expiry: now.Add(time.Hour)}, false, false},
		{"inside the skew", &Tokens{Expiry: now.Add(refreshSkew - time.Second)}, true, true},
		{"expired", &Tokens{Expiry: now.Add(-time.Second)}, true, true},
		{"short-lived, fresh", &Tokens{Issued: now.Add(-time.Second), Expiry: now.Add(9 * time.Second)}, true, false},
		{"short-lived, second half", &Tokens{Issued: now.Add(-6 * time.Second), Expiry: now.Add(4 * time.Second)}, true, true},
		{"long-lived, inside the skew", &Tokens{Issued: now.Add(-time.Hour), Expiry: now.Add(10 * time.Second)}, true, true},
	} {
		if got := renewDue(tc.tok, refreshSkew); got != tc.refresh {
			t.Errorf("%s: due for a refresh %v, want %v", tc.name, got, tc.refresh)
		}
		if got := renewDue(tc.tok, regrantSkew(tc.tok)); got != tc.regrant {
			t.Errorf("%s: due for Regrant %v, want %v", tc.name, got, tc.regrant)
		}
	}
}
