package upstream

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// Item is one prompt, resource or resource template as the upstream listed it: its key
// (the prompt's name, the resource's uri, the template's uriTemplate) and its definition as
// the raw JSON it sent, so that the proxy lists it unchanged.
type Item struct {
	Key string
	Def json.RawMessage
}

// Catalog is what an upstream offers besides tools: its prompts, resources and resource
// templates. A list the server does not advertise (no prompts or resources capability) is
// empty.
type Catalog struct {
	Prompts, Resources, Templates []Item
	// Subscribe says the server accepts resources/subscribe.
	Subscribe bool
}

// ListCatalog lists the prompts, resources and resource templates the server's
// capabilities advertise, following cursors like ListTools; every answer is bounded by
// max_message_bytes like any other. Its errors are scrubbed.
func (c *Conn) ListCatalog(ctx context.Context) (Catalog, error) {
	var cat Catalog
	if c.Init == nil {
		return cat, nil
	}
	caps := c.Init.Capabilities
	collect := func(method, key, field string, into *[]Item) error {
		return c.listPages(ctx, method, key, func(raw json.RawMessage) {
			var v map[string]json.RawMessage
			var k string
			if json.Unmarshal(raw, &v) != nil || json.Unmarshal(v[field], &k) != nil || k == "" {
				return
			}
			*into = append(*into, Item{Key: k, Def: compact(raw)})
		})
	}
	if caps.Prompts != nil {
		if err := collect(string(mcp.MethodPromptsList), "prompts", "name", &cat.Prompts); err != nil {
			return Catalog{}, c.scrub.Err(err)
		}
	}
	if caps.Resources != nil {
		cat.Subscribe = caps.Resources.Subscribe
		if err := collect(string(mcp.MethodResourcesList), "resources", "uri", &cat.Resources); err != nil {
			return Catalog{}, c.scrub.Err(err)
		}
		// Templates are optional within the capability: a server that answers
		// resources/list but not resources/templates/list simply has none.
		if err := collect(string(mcp.MethodResourcesTemplatesList), "resourceTemplates", "uriTemplate", &cat.Templates); err != nil {
			cat.Templates = nil
		}
	}
	return cat, nil
}

// Request sends one request (prompts/get, resources/read, completion/complete,
// resources/subscribe and unsubscribe) and returns its raw result, bounded like every
// answer by max_message_bytes. Its errors are scrubbed.
func (c *Conn) Request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	res, err := c.request(ctx, method, params)
	return res, c.scrub.Err(err)
}
