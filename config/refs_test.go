package config

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

func refServer() ServerConfig {
	return ServerConfig{
		Name:    "s",
		Command: "run ${secret:NOT_EXPANDED_IN_COMMAND}",
		Args:    []string{"--token=${secret:TOKEN}", "${env:HOME}/data", "echo ${HOME}"},
		Env:     map[string]string{"A": "${secret:TOKEN}", "B": "${env:USER}-${secret:OTHER}", "C": "plain"},
		Headers: map[string]string{"Authorization": "Bearer ${secret:API}"},
		URL:     "https://h.example/?u=${env:USER}",
	}
}

func TestReferences(t *testing.T) {
	secrets, envs := refServer().References()
	if !slices.Equal(secrets, []string{"API", "OTHER", "TOKEN"}) {
		t.Errorf("secrets = %q", secrets)
	}
	if !slices.Equal(envs, []string{"HOME", "USER"}) {
		t.Errorf("envs = %q", envs)
	}
	if s, e := (ServerConfig{Command: "x", Args: []string{"${secret:}"}}).References(); s != nil || e != nil {
		t.Errorf("malformed references must be skipped: %q %q", s, e)
	}
}

func TestExpand(t *testing.T) {
	secrets := map[string]string{"TOKEN": "t0k", "OTHER": "o", "API": "a p i"}
	envs := map[string]string{"HOME": "/home/u", "USER": "u"}
	lookup := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}

	t.Run("all found", func(t *testing.T) {
		in := refServer()
		got, err := in.Expand(lookup(secrets), lookup(envs))
		if err != nil {
			t.Fatal(err)
		}
		want := in.clone()
		want.Args = []string{"--token=t0k", "/home/u/data", "echo ${HOME}"}
		want.Env = map[string]string{"A": "t0k", "B": "u-o", "C": "plain"}
		want.Headers = map[string]string{"Authorization": "Bearer a p i"}
		want.URL = "https://h.example/?u=u"
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Expand =\n%+v\nwant\n%+v", got, want)
		}
		if in.Env["A"] != "${secret:TOKEN}" || in.Args[0] != "--token=${secret:TOKEN}" {
			t.Error("Expand changed its receiver's maps or slices")
		}
	})
	t.Run("values are not expanded twice", func(t *testing.T) {
		s := ServerConfig{Name: "s", Command: "c", Args: []string{"${secret:A}"}}
		got, err := s.Expand(lookup(map[string]string{"A": "${secret:B}"}), lookup(nil))
		if err != nil || got.Args[0] != "${secret:B}" {
			t.Errorf("got %q, %v", got.Args, err)
		}
	})
	t.Run("missing secret", func(t *testing.T) {
		_, err := refServer().Expand(lookup(map[string]string{"OTHER": "o", "API": "a"}), lookup(envs))
		var re *ReferenceError
		if !errors.As(err, &re) || re.Kind != RefSecret || re.Name != "TOKEN" {
			t.Fatalf("err = %v, want secret TOKEN missing", err)
		}
		if err.Error() != `secret "TOKEN" not found` {
			t.Errorf("message = %q", err.Error())
		}
	})
	t.Run("missing env", func(t *testing.T) {
		_, err := refServer().Expand(lookup(secrets), lookup(map[string]string{"HOME": "/h"}))
		if err == nil || err.Error() != `env "USER" not found` {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("nil lookups", func(t *testing.T) {
		t.Setenv("MCPPROXY_TEST_VAR", "from-process")
		s := ServerConfig{Name: "s", Command: "c", Args: []string{"${env:MCPPROXY_TEST_VAR}"}}
		got, err := s.Expand(nil, nil)
		if err != nil || got.Args[0] != "from-process" {
			t.Errorf("env from process: %q, %v", got.Args, err)
		}
		s.Args = []string{"${secret:X}"}
		if _, err := s.Expand(nil, nil); err == nil {
			t.Error("a nil secret lookup found a secret")
		}
	})
	t.Run("malformed reference", func(t *testing.T) {
		s := ServerConfig{Name: "s", Command: "c", Env: map[string]string{"T": "${secret:T"}}
		if _, err := s.Expand(lookup(secrets), lookup(envs)); err == nil {
			t.Error("a malformed reference expanded")
		}
	})
}
