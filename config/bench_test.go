package config

import (
	"fmt"
	"testing"
)

// hundredServers is a config the size of the start-up benchmark (B7): 100 servers of both
// kinds, with env, headers and references.
func hundredServers(b *testing.B) []byte {
	c := &Config{APIKey: "k"}
	for i := range 100 {
		if i%2 == 0 {
			c.Servers = append(c.Servers, ServerConfig{
				Name: fmt.Sprintf("stdio-%03d", i), Command: "npx", Args: []string{"-y", "@scope/server", "--flag=${env:HOME}"},
				Env: map[string]string{"TOKEN": "${secret:TOKEN}", "MODE": "fast"},
			})
		} else {
			c.Servers = append(c.Servers, ServerConfig{
				Name: fmt.Sprintf("http-%03d", i), URL: fmt.Sprintf("https://h%d.example/mcp", i),
				Headers: map[string]string{"Authorization": "Bearer ${secret:API}"},
			})
		}
	}
	data, err := Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkParse100Servers(b *testing.B) {
	data := hundredServers(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := Parse(data); errs != nil {
			b.Fatal(errs)
		}
	}
}

func BenchmarkCompare100Servers(b *testing.B) {
	old, errs := Parse(hundredServers(b))
	if errs != nil {
		b.Fatal(errs)
	}
	next := old.Clone()
	next.Servers[10].Args = []string{"changed"}
	b.ReportAllocs()
	for b.Loop() {
		if d := Compare(old, next); len(d.Changed) != 1 {
			b.Fatalf("diff = %+v", d)
		}
	}
}
