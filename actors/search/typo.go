package search

import "strings"

// A query word that neither the index nor the lexicon knows is most likely a misspelling
// ("reposotory", "brnach") or a name. It then matches the indexed terms closest to it in
// edit distance, at typoWeight: within one edit for a word of five to seven letters, two
// for a longer one. Shorter words are left alone, where one edit makes another word
// ("tag", "tab"). The candidates share the word's first letter, which misspellings rarely
// change, so that the scan covers one letter's slice of the sorted vocabulary rather than
// all of it.

const (
	minTypoLen = 5
	// longTypoLen is the shortest word allowed two edits.
	longTypoLen = 8
	// maxTypoTerms bounds how many terms one misspelt word may stand for.
	maxTypoTerms = 3
)

// typoTerms returns the indexed terms nearest to the stemmed query word w, the most common
// first; nil when none is near enough.
func (ix *Index) typoTerms(w string) []string {
	if len(w) < minTypoLen || !isASCIILower(w) {
		return nil
	}
	maxDist := 1
	if len(w) >= longTypoLen {
		maxDist = 2
	}
	ix.sortVocab()
	var out []string
	best := maxDist + 1
	lo, hi := firstLetterRange(ix.vocab, w[:1])
	for _, t := range ix.vocab[lo:hi] {
		if d := len(t) - len(w); d > maxDist || -d > maxDist {
			continue
		}
		d := editDistance(w, t, min(best, maxDist))
		switch {
		case d < best:
			best = d
			out = append(out[:0], t)
		case d == best && d <= maxDist:
			out = append(out, t)
		}
	}
	// The most common of equally near terms: the likelier word.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && ix.moreCommon(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if len(out) > maxTypoTerms {
		out = out[:maxTypoTerms]
	}
	return out
}

// moreCommon reports whether term a is in more documents than term b, ties by name.
func (ix *Index) moreCommon(a, b string) bool {
	na, nb := len(ix.terms[a].postings), len(ix.terms[b].postings)
	if na != nb {
		return na > nb
	}
	return a < b
}

// firstLetterRange returns the bounds of the terms of the sorted vocab that begin with p.
func firstLetterRange(vocab []string, p string) (int, int) {
	lo, hi := 0, len(vocab)
	for lo < hi {
		m := (lo + hi) / 2
		if vocab[m] < p {
			lo = m + 1
		} else {
			hi = m
		}
	}
	end := lo
	for end < len(vocab) && strings.HasPrefix(vocab[end], p) {
		end++
	}
	return lo, end
}

// editDistance returns the optimal string alignment distance between a and b (insertions,
// deletions, substitutions and swaps of adjacent letters, each one edit), or limit+1 as
// soon as it must exceed limit.
func editDistance(a, b string, limit int) int {
	if a == b {
		return 0
	}
	// Three rows of the dynamic programme: two back for a swap, one back, the current.
	var buf [3][32]int
	if len(b) >= len(buf[0]) {
		return limit + 1
	}
	prev2, prev, cur := buf[0][:len(b)+1], buf[1][:len(b)+1], buf[2][:len(b)+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit+1)
}
