// Command bench runs mcpproxy's benchmarks B1-B9 (BENCHMARKS.md in the design notes),
// B10 (status latency while 10,000 servers are applied and torn down) and B11 (the
// activity log's cost: B1 with recording on and off, records/s, listing 100,000 records)
// against the real daemon binary and the test/fixture upstreams, and prints one table:
// the figure, the median of several runs, the p99 where it applies, the target, whether
// it was met, and the command that reproduces the row.
//
// # Usage
//
//	go run ./test/bench                  # everything (a few minutes)
//	go run ./test/bench -only B3,B7      # some benchmarks
//	go run ./test/bench -runs 3 -quick   # fewer and shorter runs
//	go run ./test/bench -strict          # exit status 1 when a target is missed
//
// It builds cmd/mcpproxy and test/fixture into a temporary directory, starts daemons on
// free loopback ports with temporary data dirs, and removes everything at the end. The
// daemon runs as a separate process so that its RSS and start-up are its own; the load
// generators run in this process, on the same cores, which is what a local client does.
// B4's in-process figures come from the actors/search benchmarks (go test -bench); B9
// is computed here with the search package over test/testdata/catalogue.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// options are the command-line flags.
type options struct {
	only   map[string]bool
	runs   int
	quick  bool
	keep   bool
	quiet  bool
	strict bool
	// daemonEnv is added to the environment of every daemon the benchmarks start (and of
	// nothing else), to measure a runtime setting such as GOMAXPROCS=1 on the daemon alone.
	daemonEnv []string
}

func main() {
	var o options
	only := flag.String("only", "", "comma-separated benchmarks to run (B1..B11); default all")
	flag.IntVar(&o.runs, "runs", 5, "runs per figure; the table shows their median")
	flag.BoolVar(&o.quick, "quick", false, "shorter runs and fewer samples (a smoke test of the program)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, data dirs, daemon logs)")
	flag.BoolVar(&o.quiet, "q", false, "no progress lines on stderr")
	flag.BoolVar(&o.strict, "strict", false, "exit with status 1 when a target is missed or a figure could not be measured")
	daemonEnv := flag.String("daemon-env", "", "comma-separated KEY=VALUE added to the daemons' environment only (e.g. GOMAXPROCS=1)")
	flag.Parse()
	if *daemonEnv != "" {
		for _, kv := range strings.Split(*daemonEnv, ",") {
			if !strings.Contains(kv, "=") {
				fmt.Fprintf(os.Stderr, "bench: -daemon-env %q: want KEY=VALUE\n", kv)
				os.Exit(2)
			}
			o.daemonEnv = append(o.daemonEnv, kv)
		}
	}
	if o.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	o.only = map[string]bool{}
	for _, b := range strings.Split(*only, ",") {
		if b = strings.ToUpper(strings.TrimSpace(b)); b != "" {
			o.only[b] = true
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mcpproxy-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	e := &env{root: root, tmp: tmp, opts: o, marker: fmt.Sprintf("mcpbench%dx", os.Getpid())}
	e.progress("building mcpproxy and the fixture")
	if err := e.build(); err != nil {
		return err
	}
	defer e.reap()

	benches := []struct {
		id  string
		run func(*env) []row
	}{
		{"B9", benchRecall},
		{"B4", benchSearchInProcess},
		{"B8", benchIdleRSS},
		{"B7", benchStartup},
		{"B1", benchCallLatency},
		{"B5", benchFanOut},
		{"BIG", benchBig}, // B3, B4 (HTTP), B6 (restart_all), B8 (100 upstreams)
		{"B10", benchTearDown},
		{"B11", benchActivity},
	}
	start := time.Now()
	loadBefore := loadAvg()
	var rows []row
	for _, b := range benches {
		if !e.wants(b.id) {
			continue
		}
		rows = append(rows, b.run(e)...)
	}
	// By number, so that B10 comes after B9.
	slices.SortStableFunc(rows, func(a, b row) int {
		if c := len(a.id) - len(b.id); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	fmt.Println(machine())
	fmt.Println()
	printTable(os.Stdout, rows)
	fmt.Printf("\nTotal bench time %s. Median of %d runs unless the row says otherwise. Load average (1 min) at start %s, at end %s:\n"+
		"other work on the machine shares its cores with the daemon and the load generator.\n",
		time.Since(start).Round(time.Second), o.runs, loadBefore, loadAvg())
	missed, unmeasured := 0, 0
	for _, r := range rows {
		switch {
		case r.value == "n/a":
			unmeasured++
		case r.pass != nil && !*r.pass:
			missed++
		}
	}
	fmt.Printf("%d of %d figures missed their target, %d could not be measured.\n", missed, len(rows), unmeasured)
	if o.strict && missed+unmeasured > 0 {
		return errors.New("targets missed (-strict)")
	}
	return nil
}

// wants reports whether benchmark id (or the big phase, which serves B3, B4, B6 and B8)
// was selected.
func (e *env) wants(id string) bool {
	if len(e.opts.only) == 0 {
		return true
	}
	switch id {
	case "BIG":
		return e.opts.only["B3"] || e.opts.only["B4"] || e.opts.only["B6"] || e.opts.only["B8"]
	case "B1":
		return e.opts.only["B1"] || e.opts.only["B2"]
	case "B7":
		return e.opts.only["B7"] || e.opts.only["B6"]
	}
	return e.opts.only[id]
}

func (e *env) progress(format string, args ...any) {
	if !e.opts.quiet {
		fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	}
}

// moduleRoot finds the directory holding go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run from inside the module")
		}
		dir = parent
	}
}

// build compiles the daemon, its guard and the fixture into the temporary directory.
func (e *env) build() error {
	for _, b := range []struct{ out, pkg string }{{"mcpproxy", "./cmd/mcpproxy"}, {"mcpproxy-guard", "./cmd/mcpproxy-guard"}, {"fixture", "./test/fixture"}} {
		cmd := exec.Command("go", "build", "-tags", buildTags, "-o", filepath.Join(e.tmp, b.out), b.pkg)
		cmd.Dir = e.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// machine describes where the figures were taken.
func machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(data))
	}
	mem := ""
	if kb := meminfoKB("MemTotal"); kb > 0 {
		mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("Machine: %s, %d cores%s%s, %s, %s", cpu, runtime.NumCPU(), mem, kernel, runtime.Version(), time.Now().UTC().Format("2006-01-02"))
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func meminfoKB(field string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			var n int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &n)
			return n
		}
	}
	return 0
}

// buildTags are the tags `make build` uses: nomsgpack drops gin's msgpack renderer, about 9 MB
// of binary that the kernel otherwise counts in the daemon's RSS (see README, B8).
const buildTags = "nomsgpack"
