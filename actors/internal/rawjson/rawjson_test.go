package rawjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
)

type member struct{ key, value string }

// decodedMembers is what encoding/json's token reader gives for the object v: each key and
// its value as written.
func decodedMembers(v []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		out = append(out, member{k.(string), string(raw)})
	}
	return out, true
}

func decodedElements(v []byte) ([]string, bool) {
	var raw []json.RawMessage
	if json.Unmarshal(v, &raw) != nil || raw == nil {
		return nil, false
	}
	out := []string{}
	for _, r := range raw {
		// Unmarshal keeps each element as written, less its surrounding space.
		out = append(out, string(r))
	}
	return out, true
}

func readMembers(v []byte) ([]member, bool) {
	var out []member
	ok := Members(v, func(rawKey, value []byte) bool {
		k, _ := String(rawKey) // invalid input may have a key it cannot decode
		out = append(out, member{k, string(value)})
		return true
	})
	return out, ok
}

func readElements(v []byte) ([]string, bool) {
	out := []string{}
	ok := Elements(v, func(elem []byte) bool {
		out = append(out, string(elem))
		return true
	})
	return out, ok
}

var seeds = []string{
	`{}`, `[]`, ` { "a" : 1 , "b":[1, {"c":"}"}] } `, `{"a":"x\"y","a":null}`, `["s", 2, true, null, {"k":[]}, [[]]]`,
	`{"\u00e9":"caf\u00e9","esc\\":"\\\\"}`, "{\"bad\":\"\xff\"}", `"str"`, `12.5e3`, `null`, `{"n":-0.1E+2,"t":true,"f":false}`,
}

// TestMembersAndElementsMatchDecoding: on valid JSON, Members and Elements give what
// encoding/json's decoding gives, and Skip ends where its decoder does.
func TestMembersAndElementsMatchDecoding(t *testing.T) {
	for _, s := range seeds {
		check(t, []byte(s))
	}
}

func FuzzRawJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if !json.Valid(v) {
			// Not valid: nothing is promised but that nothing panics.
			readMembers(v)
			readElements(v)
			Skip(v)
			return
		}
		check(t, v)
	})
}

func check(t *testing.T, v []byte) {
	t.Helper()
	wantM, wok := decodedMembers(v)
	gotM, gok := readMembers(v)
	if wok != gok || !slices.Equal(gotM, wantM) {
		t.Fatalf("Members(%q) = %v %v, want %v %v", v, gotM, gok, wantM, wok)
	}
	wantE, wok := decodedElements(v)
	gotE, gok := readElements(v)
	if wok != gok || (wok && !slices.Equal(gotE, wantE)) {
		t.Fatalf("Elements(%q) = %q %v, want %q %v", v, gotE, gok, wantE, wok)
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("decoding %q: %v", v, err)
	}
	rest, ok := Skip(v)
	if !ok || len(v)-len(rest) != int(dec.InputOffset()) {
		t.Fatalf("Skip(%q) left %q (%v), the decoder stopped at %d", v, rest, ok, dec.InputOffset())
	}
	var s string
	if trimmed := bytes.TrimSpace(v); len(trimmed) > 0 && trimmed[0] == '"' && json.Unmarshal(v, &s) == nil {
		if got, ok := String(trimmed); !ok || got != s {
			t.Fatalf("String(%q) = %q %v, want %q", v, got, ok, s)
		}
	}
}
