package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func pemOf(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// verifyJWT checks a compact JWS against pub as a verifier would and returns its header and
// claims.
func verifyJWT(t *testing.T, jwt string, pub crypto.PublicKey) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", jwt)
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("base64url: %v", err)
		}
		return b
	}
	var header, claims map[string]any
	if json.Unmarshal(dec(parts[0]), &header) != nil || json.Unmarshal(dec(parts[1]), &claims) != nil {
		t.Fatal("header or claims are not JSON")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig := dec(parts[2])
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != 64 || !ecdsa.Verify(k, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("ES256 signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig); err != nil {
			t.Fatalf("RS256 signature does not verify: %v", err)
		}
	}
	return header, claims
}

// TestClientAssertion: private_key_jwt assertions verify with the public key, name the
// client as iss and sub and the authorization server as aud, live five minutes, carry a
// fresh jti, and take the algorithm of the key; a mismatched algorithm or a non-key is an
// error that does not quote the key.
func TestClientAssertion(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		alg, wantAlg string
		key          crypto.Signer
	}{{"", "ES256", ec}, {"ES256", "ES256", ec}, {"", "RS256", rs}, {"RS256", "RS256", rs}} {
		c := Client{ID: "cid", PrivateKey: pemOf(t, tc.key), SigningAlg: tc.alg}
		a1, err := ClientAssertion(c, "https://as.example", now)
		if err != nil {
			t.Fatal(err)
		}
		a2, _ := ClientAssertion(c, "https://as.example", now)
		h, cl := verifyJWT(t, a1, tc.key.Public())
		_, cl2 := verifyJWT(t, a2, tc.key.Public())
		if h["alg"] != tc.wantAlg || cl["iss"] != "cid" || cl["sub"] != "cid" || cl["aud"] != "https://as.example" ||
			cl["iat"] != float64(now.Unix()) || cl["exp"] != float64(now.Add(5*time.Minute).Unix()) {
			t.Errorf("alg %q: header %v claims %v", tc.alg, h, cl)
		}
		if cl["jti"] == "" || cl["jti"] == cl2["jti"] {
			t.Errorf("jti not fresh: %v %v", cl["jti"], cl2["jti"])
		}
	}
	secret := "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"
	for _, c := range []Client{
		{ID: "x", PrivateKey: pemOf(t, ec), SigningAlg: "RS256"},
		{ID: "x", PrivateKey: pemOf(t, rs), SigningAlg: "ES256"},
		{ID: "x", PrivateKey: secret},
		{ID: "x", PrivateKey: "no pem here"},
	} {
		_, err := ClientAssertion(c, "aud", now)
		if err == nil || strings.Contains(err.Error(), "bm90IGEga2V5") || strings.Contains(err.Error(), "BEGIN") {
			t.Errorf("want an error that does not quote the key, got %v", err)
		}
	}
}

// TestGrantsCarryResourceAndAssertion: a refresh sends grant_type refresh_token with the
// RFC 8707 resource the tokens were issued for; a private_key_jwt client sends a verifiable
// assertion for the issuer and no secret, on refresh and client_credentials alike.
func TestGrantsCarryResourceAndAssertion(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var forms []map[string]string
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := map[string]string{"auth": r.Header.Get("Authorization")}
		for k := range r.PostForm {
			f[k] = r.PostForm.Get(k)
		}
		forms = append(forms, f)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"new-access","refresh_token":"new-refresh","token_type":"Bearer","expires_in":60}`))
	}))
	defer as.Close()
	ctx := t.Context()

	tok := &Tokens{URL: "https://mcp.example/mcp", RefreshToken: "old-refresh", Resource: "https://mcp.example/mcp",
		TokenURL: as.URL + "/token", Issuer: as.URL, Client: Client{ID: "pub", AuthMethod: "none"}}
	n, err := Refresh(ctx, as.Client(), tok)
	if err != nil || n.AccessToken != "new-access" || n.RefreshToken != "new-refresh" {
		t.Fatalf("refresh: %v %+v", err, n)
	}
	if f := forms[0]; f["grant_type"] != "refresh_token" || f["refresh_token"] != "old-refresh" ||
		f["resource"] != "https://mcp.example/mcp" || f["client_id"] != "pub" || f["auth"] != "" {
		t.Errorf("refresh form %v", f)
	}

	tok.Client = Client{ID: "cid", PrivateKey: pemOf(t, ec), AuthMethod: "private_key_jwt"}
	if _, err := Refresh(ctx, as.Client(), tok); err != nil {
		t.Fatal(err)
	}
	d := &Discovery{Resource: "https://mcp.example/mcp", AS: ServerMetadata{Issuer: as.URL, TokenEndpoint: as.URL + "/token"}}
	if _, err := ClientCredentials(ctx, as.Client(), "https://mcp.example/mcp", d, Client{ID: "cid", PrivateKey: tok.Client.PrivateKey}, []string{"read"}); err != nil {
		t.Fatal(err)
	}
	for i, grant := range map[int]string{1: "refresh_token", 2: "client_credentials"} {
		f := forms[i]
		if f["grant_type"] != grant || f["resource"] != "https://mcp.example/mcp" || f["client_assertion_type"] != ClientAssertionType ||
			f["client_secret"] != "" || f["auth"] != "" {
			t.Errorf("%s form %v", grant, f)
		}
		if _, cl := verifyJWT(t, f["client_assertion"], ec.Public()); cl["aud"] != as.URL || cl["iss"] != "cid" {
			t.Errorf("%s assertion claims %v", grant, cl)
		}
	}
}

type memTokens struct{ t *Tokens }

func (m *memTokens) Get() (*Tokens, error) { return m.t, nil }
func (m *memTokens) Put(t *Tokens) error   { m.t = t; return nil }

// TestTransportScrubsEveryToken: the Transport gives Scrub the tokens it first sends and,
// before storing them, those a refresh returns, so that the connection's Scrubber hides
// refreshed tokens too.
func TestTransportScrubsEveryToken(t *testing.T) {
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"refreshed-access","refresh_token":"refreshed-refresh","token_type":"Bearer","expires_in":3600}`))
	}))
	defer as.Close()
	var seen []string
	mcp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
	}))
	defer mcp.Close()
	st := &memTokens{t: &Tokens{URL: mcp.URL, AccessToken: "first-access", RefreshToken: "first-refresh",
		Expiry: time.Now().Add(time.Hour), TokenURL: as.URL, Client: Client{ID: "c", AuthMethod: "none"}}}
	var scrubbed []string
	tr := &Transport{Base: http.DefaultTransport, Store: st, URL: mcp.URL, HTTP: as.Client(),
		Scrub: func(v ...string) { scrubbed = append(scrubbed, v...) }}
	hc := &http.Client{Transport: tr}
	get := func() {
		resp, err := hc.Get(mcp.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	get()                                     // the same tokens: not given again
	st.t.Expiry = time.Now().Add(time.Second) // inside the refresh skew
	get()
	if want := []string{"Bearer first-access", "Bearer first-access", "Bearer refreshed-access"}; strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("sent %v, want %v", seen, want)
	}
	got := strings.Join(scrubbed, ",")
	for _, v := range []string{"first-access", "first-refresh", "refreshed-access", "refreshed-refresh"} {
		if strings.Count(got, v) != 1 {
			t.Errorf("Scrub got %q, want %s exactly once", got, v)
		}
	}
}
