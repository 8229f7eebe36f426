package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func redactFixture() *Config {
	return &Config{
		APIKey: "real-key",
		Servers: []ServerConfig{
			{Name: "gh", Command: "npx", Env: map[string]string{
				"GITHUB_TOKEN": "ghp_literal", "REF": "${secret:GITHUB_TOKEN}", "HOME_REF": "${env:HOME}",
				"MIXED": "prefix-${secret:X}", "EMPTY": "",
			}},
			{Name: "remote", URL: "https://h/mcp", Headers: map[string]string{
				"Authorization": "Bearer abc", "X-Ref": "${secret:API}",
			}},
		},
	}
}

func TestRedact(t *testing.T) {
	c := redactFixture()
	r := Redact(c)
	if r.APIKey != Redacted {
		t.Errorf("api_key = %q", r.APIKey)
	}
	wantEnv := map[string]string{
		"GITHUB_TOKEN": Redacted, "REF": "${secret:GITHUB_TOKEN}", "HOME_REF": "${env:HOME}", "MIXED": Redacted, "EMPTY": "",
	}
	if !reflect.DeepEqual(r.Servers[0].Env, wantEnv) {
		t.Errorf("env = %v, want %v", r.Servers[0].Env, wantEnv)
	}
	wantHeaders := map[string]string{"Authorization": Redacted, "X-Ref": "${secret:API}"}
	if !reflect.DeepEqual(r.Servers[1].Headers, wantHeaders) {
		t.Errorf("headers = %v, want %v", r.Servers[1].Headers, wantHeaders)
	}
	if c.APIKey != "real-key" || c.Servers[0].Env["GITHUB_TOKEN"] != "ghp_literal" {
		t.Error("Redact changed its argument")
	}
	if got := Redact(&Config{}); got.APIKey != "" {
		t.Errorf("empty api_key became %q", got.APIKey)
	}
}

func TestKeepRedacted(t *testing.T) {
	current := redactFixture()

	t.Run("redacted round trip restores everything", func(t *testing.T) {
		got, errs := KeepRedacted(current, Redact(current))
		if errs != nil {
			t.Fatal(errs)
		}
		if !reflect.DeepEqual(got, current) {
			t.Errorf("got %+v\nwant %+v", got, current)
		}
	})
	t.Run("new values win, placeholders keep", func(t *testing.T) {
		in := Redact(current)
		in.Servers[0].Env["GITHUB_TOKEN"] = "ghp_new"
		in.Servers[1].Headers = map[string]string{"authorization": Redacted} // re-cased by a UI
		got, errs := KeepRedacted(current, in)
		if errs != nil {
			t.Fatal(errs)
		}
		if got.Servers[0].Env["GITHUB_TOKEN"] != "ghp_new" || got.Servers[0].Env["MIXED"] != "prefix-${secret:X}" {
			t.Errorf("env = %v", got.Servers[0].Env)
		}
		if got.Servers[1].Headers["authorization"] != "Bearer abc" {
			t.Errorf("headers = %v", got.Servers[1].Headers)
		}
		if in.Servers[0].Env["MIXED"] != Redacted {
			t.Error("KeepRedacted changed its argument")
		}
	})
	t.Run("placeholder without a current value", func(t *testing.T) {
		in := Redact(current)
		in.Servers = append(in.Servers, ServerConfig{Name: "new", Command: "c", Env: map[string]string{"T": Redacted}})
		in.Servers[1].Headers["X-New"] = Redacted
		_, errs := KeepRedacted(&Config{Servers: current.Servers}, in)
		want := []string{"api_key", "mcpServers[1].headers.X-New", "mcpServers[2].env.T"}
		if got := fields(errs); !slices.Equal(got, want) {
			t.Errorf("fields = %q, want %q", got, want)
		}
	})
	t.Run("nil current", func(t *testing.T) {
		_, errs := KeepRedacted(nil, &Config{APIKey: Redacted})
		if got := fields(errs); !slices.Equal(got, []string{"api_key"}) {
			t.Errorf("fields = %q", got)
		}
	})
}

// TestCheck covers the one pipeline of an apply and a validate: from the API the placeholder
// keeps the current value, from the file it is an error naming the field, and an invalid
// normalised config gives field errors and no configs.
func TestCheck(t *testing.T) {
	current := &Config{APIKey: "real-key", Servers: []ServerConfig{{Name: "a", Command: "x", Env: map[string]string{"T": "v"}}}}
	incoming := &Config{APIKey: Redacted, Servers: []ServerConfig{{Name: "a", Command: "x", Env: map[string]string{"T": Redacted}}}}

	next, eff, errs := Check(current, incoming, SourceAPI)
	if len(errs) != 0 || next.APIKey != "real-key" || next.Servers[0].Env["T"] != "v" {
		t.Fatalf("api: next=%+v errs=%v; want the current values kept", next, errs)
	}
	if eff.Servers[0].Protocol != ProtocolStdio {
		t.Fatalf("api: eff is not normalised: %+v", eff.Servers[0])
	}
	if next.Servers[0].Protocol != "" {
		t.Fatalf("api: next was normalised (%q): the file must keep its own form", next.Servers[0].Protocol)
	}

	next, eff, errs = Check(current, incoming, SourceFile)
	if next != nil || eff != nil || len(errs) != 2 {
		t.Fatalf("file: next=%v eff=%v errs=%v; want two placeholder errors", next, eff, errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Message, "how the API hides a value") {
			t.Fatalf("file: error %+v does not explain the placeholder", e)
		}
	}

	bad := &Config{Servers: []ServerConfig{{Name: "a"}}} // neither command nor url
	if next, eff, errs := Check(nil, bad, SourceAPI); next != nil || eff != nil || len(errs) == 0 {
		t.Fatalf("invalid: next=%v eff=%v errs=%v; want field errors only", next, eff, errs)
	}
}
