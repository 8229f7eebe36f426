package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// row is one line of the result table.
type row struct {
	id     string // "B1"...
	figure string
	value  string // the median of the runs
	p99    string // "" where no percentile applies
	target string
	pass   *bool // nil: no target, or not measured
	runs   int
	cmd    string
	note   string
}

func verdict(ok bool) *bool { return &ok }

// missing is a row for a figure that could not be measured, with the reason.
func missing(id, figure, target, cmd, why string) row {
	return row{id: id, figure: figure, value: "n/a", target: target, cmd: cmd, note: why}
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| # | Figure | Median | p99 | Target | Result | Runs | Reproduce |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		res := "-"
		if r.pass != nil {
			res = "pass"
			if !*r.pass {
				res = "**miss**"
			}
		}
		if r.value == "n/a" {
			res = "not measured"
		}
		fig := r.figure
		if r.note != "" {
			fig += " (" + r.note + ")"
		}
		p99 := r.p99
		if p99 == "" {
			p99 = "-"
		}
		runs := "-"
		if r.runs > 0 {
			runs = fmt.Sprint(r.runs)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | `%s` |\n", r.id, esc(fig), r.value, p99, esc(r.target), res, runs, esc(r.cmd))
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// percentile returns the nearest-rank q-quantile (0 < q <= 1) of d, sorting it in place.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// medianDur is the median of a few run results.
func medianDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ms formats a duration in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case math.Abs(v) < 1:
		return fmt.Sprintf("%.3f ms", v)
	case math.Abs(v) < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.1f us", float64(d)/float64(time.Microsecond))
}

// mb formats a size given in KiB (as /proc reports it) in MB of 10^6 bytes, the unit of the
// targets.
func mb(kb int64) string { return fmt.Sprintf("%.1f MB", mbOf(kb)) }

func mbOf(kb int64) float64 { return float64(kb) * 1024 / 1e6 }
