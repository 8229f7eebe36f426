package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ParseServer decodes one server entry, as POST /api/v1/servers takes it: the shape of an
// element of the list form of mcpServers, decoded as strictly as Parse decodes the file
// (exact field names, types, no duplicate keys) and validated by the same rules as a server
// in a config. Field paths are the entry's own ("command", "env.API_KEY"), not
// "mcpServers[0].command". Like Parse, it returns what could be decoded and every problem.
func ParseServer(data []byte) (ServerConfig, []FieldError) {
	p := &parser{}
	data = bytes.TrimPrefix(data, utf8BOM)
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		p.fail("", "empty body; want a server entry (a JSON object)")
		return ServerConfig{}, p.errs
	case !json.Valid(data):
		p.fail("", "%s", syntaxError(data))
		return ServerConfig{}, p.errs
	}
	s, _ := p.server("", data)
	failed := make(map[string]bool, len(p.errs))
	for _, e := range p.errs {
		failed[e.Field] = true
	}
	for _, e := range ServerErrors(s) {
		if !covered(failed, e.Field) {
			p.errs = append(p.errs, e)
		}
	}
	return s, p.errs
}

// ServerErrors validates one entry on its own (as Validate does each server of a config),
// with the entry's own field paths.
func ServerErrors(s ServerConfig) []FieldError {
	c := Config{Servers: []ServerConfig{s}}
	return EntryErrors(c.Validate(), 0)
}

// EntryErrors picks out of a config's field errors those about mcpServers[i] and names
// their fields as the entry's own ("command" for "mcpServers[3].command"); errors about
// the whole entry are named by RootField. Errors about other fields are kept as they are,
// so that nothing is dropped.
func EntryErrors(errs []FieldError, i int) []FieldError {
	prefix := fmt.Sprintf("mcpServers[%d]", i)
	out := make([]FieldError, 0, len(errs))
	for _, e := range errs {
		switch {
		case e.Field == prefix:
			e.Field = RootField
		case strings.HasPrefix(e.Field, prefix+"."):
			e.Field = strings.TrimPrefix(e.Field, prefix+".")
		case strings.HasPrefix(e.Field, prefix+"["):
			e.Field = strings.TrimPrefix(e.Field, prefix)
		}
		out = append(out, e)
	}
	return out
}

// PatchServer applies a JSON merge patch (RFC 7386) to an entry, as PATCH
// /api/v1/servers/{name} takes it: members of the patch replace those of the entry, objects
// (env, headers, isolation, oauth) are merged member by member, and null removes a member
// ({"env": {"DEBUG": null}} drops one variable, {"url": null} the URL). Lists (args,
// scopes) are replaced whole, as the RFC says. The result is decoded and validated like
// ParseServer's; the name cannot be changed (add a new server and remove this one).
func PatchServer(cur ServerConfig, patch []byte) (ServerConfig, []FieldError) {
	patch = bytes.TrimPrefix(patch, utf8BOM)
	if !json.Valid(patch) {
		return cur, []FieldError{{Field: RootField, Message: syntaxError(patch)}}
	}
	if kindOf(patch) != "object" {
		return cur, []FieldError{{Field: RootField, Message: "want a JSON merge patch of the entry (an object), got " + kindOf(patch)}}
	}
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil {
		return cur, []FieldError{{Field: RootField, Message: err.Error()}}
	}
	if n, ok := p["name"]; ok && n != cur.Name {
		return cur, []FieldError{{Field: "name", Message: fmt.Sprintf("cannot be changed (is %q); add a server under the new name and remove this one", cur.Name)}}
	}
	base, err := json.Marshal(cur)
	if err != nil {
		return cur, []FieldError{{Field: RootField, Message: err.Error()}}
	}
	var doc any
	if err := json.Unmarshal(base, &doc); err != nil {
		return cur, []FieldError{{Field: RootField, Message: err.Error()}}
	}
	merged, err := json.Marshal(MergePatch(doc, p))
	if err != nil {
		return cur, []FieldError{{Field: RootField, Message: err.Error()}}
	}
	return ParseServer(merged)
}

// MergePatch applies an RFC 7386 merge patch to a decoded JSON document and returns the
// result; target may be changed in place.
func MergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = MergePatch(tm[k], v)
	}
	return tm
}
