package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestParseManyErrorsIsLinear feeds a document with 50,000 servers of one name and a typo
// each. It once took minutes (each error was checked against all earlier ones); the speed
// itself is measured by BenchmarkParseManyDuplicates, this checks the answer stays bounded.
func TestParseManyErrorsIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"mcpServers":[`)
	for i := range 50000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"dup","command":"x","comand":%d}`, i)
	}
	b.WriteString(`]}`)
	_, errs := Parse([]byte(b.String()))
	if len(errs) != MaxErrors+1 || !strings.Contains(errs[MaxErrors].Message, "more errors") {
		t.Fatalf("got %d errors, want %d listed and a summary", len(errs), MaxErrors)
	}
}

func BenchmarkParseManyDuplicates(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"mcpServers":[`)
	for i := range 20000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"name":"dup","command":"x"}`)
	}
	sb.WriteString(`]}`)
	data := []byte(sb.String())
	for b.Loop() {
		Parse(data)
	}
}
