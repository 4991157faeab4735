package config

import "strings"

// Closest returns the candidate nearest to word (case-insensitive edit
// distance), if it is near enough to be a likely misspelling: at most 2
// edits, and fewer than half the word's letters. It returns "" otherwise.
// Error messages use it for "did you mean ...?".
func Closest(word string, candidates []string) string {
	lw := strings.ToLower(word)
	w := []rune(lw)
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistanceAtMost(w, []rune(strings.ToLower(c)), 2)
		if d == 0 {
			return c
		}
		if d <= 2 && 2*d < len(lw) && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment): insertions, deletions, substitutions and swaps of two
// neighbouring letters each count one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	return editDistanceAtMost(ra, rb, max(len(ra), len(rb)))
}

// editDistanceAtMost is editDistance when it is at most k, and k+1
// otherwise. Only the cells within k of the diagonal can hold a distance
// of at most k, so only those are computed, three rows of them at a
// time: time and memory grow with k times the words' length, not with
// the product of their lengths (Closest, with k = 2, is given names from
// a request's Config fragment, which may be megabytes long).
func editDistanceAtMost(a, b []rune, k int) int {
	if len(a)-len(b) > k || len(b)-len(a) > k {
		return k + 1
	}
	inf, w := k+1, 2*k+1
	// rows[i%3][t] is the distance between a[:i] and b[:j], j = i+t-k.
	var rows [3][]int
	for i := range rows {
		rows[i] = make([]int, w)
	}
	at := func(row []int, t int) int {
		if t < 0 || t >= w {
			return inf
		}
		return row[t]
	}
	for i := 0; i <= len(a); i++ {
		cur, prev := rows[i%3], rows[(i+2)%3]
		for t := range w {
			j := i + t - k
			switch {
			case j < 0 || j > len(b):
				cur[t] = inf
			case i == 0:
				cur[t] = min(j, inf)
			case j == 0:
				cur[t] = min(i, inf)
			default:
				cost := 1
				if a[i-1] == b[j-1] {
					cost = 0
				}
				d := min(at(prev, t+1)+1, at(cur, t-1)+1, at(prev, t)+cost)
				if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
					d = min(d, at(rows[(i+1)%3], t)+1)
				}
				cur[t] = min(d, inf)
			}
		}
	}
	return rows[len(a)%3][len(b)-len(a)+k]
}

// didYouMean is " (did you mean X?)" for the closest candidate, or "".
func didYouMean(word string, candidates []string, format string) string {
	if c := Closest(word, candidates); c != "" && !strings.EqualFold(c, word) {
		return " (did you mean " + strings.ReplaceAll(format, "%s", c) + "?)"
	}
	return ""
}
