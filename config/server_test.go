package config

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func TestParseServer(t *testing.T) {
	s, errs := ParseServer([]byte(`{"name":"fx","command":"npx","args":["-y","x"],"env":{"A":"1"},"quarantined":false}`))
	if len(errs) > 0 || s.Name != "fx" || s.Command != "npx" || !slices.Equal(s.Args, []string{"-y", "x"}) || s.Env["A"] != "1" || s.IsQuarantined() {
		t.Fatalf("good entry: %+v %v", s, errs)
	}
	for _, c := range []struct {
		body string
		want []string
	}{
		{``, []string{RootField}},
		{`[1]`, []string{RootField}},
		{`{"name":"x"}`, []string{"command"}},
		{`{"name":"x","comand":"y"}`, []string{"comand", "command"}},
		{`{"command":"y"}`, []string{"name"}},
		{`{"name":"a b","command":"y"}`, []string{"name"}},
		{`{"name":"x","command":"y","env":{"A":1}}`, []string{"env.A"}},
		{`{"name":"x","url":"ftp://h/"}`, []string{"url"}},
		{`{"name":"x","command":"y","name":"z"}`, []string{"name"}},
	} {
		_, errs := ParseServer([]byte(c.body))
		if got := fields(errs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: fields %v, want %v (%v)", c.body, got, c.want, errs)
		}
	}
}

func TestPatchServer(t *testing.T) {
	cur := ServerConfig{Name: "fx", Command: "npx", Args: []string{"a"}, Env: map[string]string{"A": "1", "B": "2"}}
	got, errs := PatchServer(cur, []byte(`{"env":{"B":null,"C":"3"},"args":["b","c"],"quarantined":false}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(got.Env, map[string]string{"A": "1", "C": "3"}) || !slices.Equal(got.Args, []string{"b", "c"}) || got.IsQuarantined() || got.Command != "npx" {
		t.Errorf("patched %+v", got)
	}
	if cur.Env["B"] != "2" {
		t.Error("the current entry was changed in place")
	}
	// From stdio to http: the command goes, the url comes.
	got, errs = PatchServer(cur, []byte(`{"command":null,"args":null,"env":null,"url":"http://h/mcp"}`))
	if len(errs) > 0 || got.Command != "" || got.URL != "http://h/mcp" || got.Env != nil {
		t.Errorf("to http: %+v %v", got, errs)
	}
	for _, c := range []struct {
		patch string
		want  []string
	}{
		{`{"name":"other"}`, []string{"name"}},
		{`{"url":"http://h/"}`, []string{"url"}},
		{`{"command":null}`, []string{"command"}},
		{`[]`, []string{RootField}},
		{`{`, []string{RootField}},
		{`{"bogus":1}`, []string{"bogus"}},
	} {
		if _, errs := PatchServer(cur, []byte(c.patch)); !reflect.DeepEqual(fields(errs), c.want) {
			t.Errorf("%s: fields %v, want %v (%v)", c.patch, fields(errs), c.want, errs)
		}
	}
	// The same name is allowed in a patch.
	if _, errs := PatchServer(cur, []byte(`{"name":"fx"}`)); len(errs) > 0 {
		t.Errorf("same name: %v", errs)
	}
}

// TestMergePatch runs the examples of RFC 7386, appendix A.
func TestMergePatch(t *testing.T) {
	for _, c := range [][3]string{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	} {
		var target, patch, want any
		for i, p := range []*any{&target, &patch, &want} {
			if err := json.Unmarshal([]byte(c[i]), p); err != nil {
				t.Fatal(err)
			}
		}
		if got := MergePatch(target, patch); !reflect.DeepEqual(got, want) {
			t.Errorf("MergePatch(%s, %s) = %v, want %s", c[0], c[1], got, c[2])
		}
	}
}
