package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mcpproxy/mcpproxy/actors/search/searcheval"
)

// benchRecall is B9: recall@1, recall@5 and MRR@5 of the search index over the labelled
// query sets in test/testdata/catalogue, computed with actors/search/searcheval exactly as
// TestRecall does. It is deterministic, so one run.
func benchRecall(e *env) []row {
	e.progress("B9 search quality")
	const cmd = "go test -run TestRecall -v ./actors/search"
	dir := filepath.Join(e.root, "test", "testdata", "catalogue")
	var rows []row
	for _, set := range searcheval.Sets {
		target, ok1, ok5 := "recall@5 >= 0.9, recall@1 >= 0.5", 0.5, 0.9
		if strings.HasSuffix(set.File, ".tsv") {
			target, ok1, ok5 = "recall@5 >= 0.85, recall@1 >= 0.6", 0.6, 0.85
		}
		ix, _, err := searcheval.Load(dir, set.Catalogues)
		if err != nil {
			rows = append(rows, missing("B9", "search quality, "+set.Label, target, cmd, err.Error()))
			continue
		}
		queries, err := searcheval.LoadQueries(filepath.Join(dir, set.File))
		if err != nil {
			rows = append(rows, missing("B9", "search quality, "+set.Label, target, cmd, err.Error()))
			continue
		}
		f := searcheval.Evaluate(ix, queries)
		rows = append(rows, row{
			id:     "B9",
			figure: fmt.Sprintf("search quality, %s: %d queries over %d tools", set.Label, f.N, ix.Len()),
			value:  fmt.Sprintf("recall@1 %.2f, recall@5 %.2f, MRR@5 %.2f", f.At1, f.At5, f.MRR),
			target: target, pass: verdict(f.At1 >= ok1 && f.At5 >= ok5), runs: 1, cmd: cmd,
		})
	}
	return rows
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// benchLine matches a line of go test -bench output and captures the name and the rest.
var benchLine = regexp.MustCompile(`^(Benchmark\w+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// benchSearchInProcess is B4's in-process part: BenchmarkSearch10k (p50 of one query over
// 10,000 tools on 100 servers) and BenchmarkReindexServer100 (replacing one server's 100
// tools), run with go test -bench -count=runs; the table shows the median over the counts.
func benchSearchInProcess(e *env) []row {
	e.progress("B4 in-process search (go test -bench ./actors/search)")
	const cmd = "go test -run '^$' -bench 'Search10k|ReindexServer100' -count 5 ./actors/search"
	benchtime := "1s"
	if e.opts.quick {
		benchtime = "200ms"
	}
	c := exec.Command("go", "test", "-run", "^$", "-bench", "^(BenchmarkSearch10k|BenchmarkReindexServer100)$",
		"-benchtime", benchtime, "-count", strconv.Itoa(e.opts.runs), "./actors/search")
	c.Dir = e.root
	out, err := c.CombinedOutput()
	if err != nil {
		why := fmt.Sprintf("go test -bench failed: %v: %s", err, lastLines(out, 5))
		return []row{
			missing("B4", "in-process search p50, 10,000 tools", "p50 <= 100 us", cmd, why),
			missing("B4", "re-index of one 100-tool server", "<= 5 ms", cmd, why),
		}
	}
	metrics := map[string]map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if metrics[m[1]] == nil {
			metrics[m[1]] = map[string][]float64{}
		}
		// The rest is pairs "<value> <unit>".
		f := bytes.Fields([]byte(m[2]))
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(string(f[i]), 64)
			if err == nil {
				metrics[m[1]][string(f[i+1])] = append(metrics[m[1]][string(f[i+1])], v)
			}
		}
	}
	var rows []row
	if s := metrics["BenchmarkSearch10k"]; len(s["p50-ns"]) > 0 {
		p50 := time.Duration(medianF(s["p50-ns"]))
		p99 := time.Duration(medianF(s["p99-ns"]))
		rows = append(rows, row{id: "B4", figure: "in-process search, 10,000 tools on 100 servers (mean " + us(time.Duration(medianF(s["ns/op"]))) + ")",
			value: us(p50), p99: us(p99), target: "p50 <= 100 us", pass: verdict(p50 <= 100*time.Microsecond),
			runs: len(s["p50-ns"]), cmd: cmd})
	} else {
		rows = append(rows, missing("B4", "in-process search p50, 10,000 tools", "p50 <= 100 us", cmd, "no BenchmarkSearch10k output"))
	}
	if s := metrics["BenchmarkReindexServer100"]; len(s["ns/op"]) > 0 {
		v := time.Duration(medianF(s["ns/op"]))
		rows = append(rows, row{id: "B4", figure: "re-index of one 100-tool server in an index of 10,000 (mean per op)",
			value: ms(v), target: "<= 5 ms", pass: verdict(v <= 5*time.Millisecond), runs: len(s["ns/op"]), cmd: cmd})
	} else {
		rows = append(rows, missing("B4", "re-index of one 100-tool server", "<= 5 ms", cmd, "no BenchmarkReindexServer100 output"))
	}
	return rows
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" / ")))
}
