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

// nearIndex answers Closest for many words against the same candidates
// with a bounded amount of work, where calling Closest for each word costs
// the product of their numbers: a request's Config fragment may list
// thousands of tasks without sections and hold thousands of unlisted
// sections (listedWithoutSection). Candidates are grouped by length, so a
// word is compared only with those of its length give or take two (the
// others are more than two edits away), and the comparisons together may
// cost at most budget cells of the distance table (editDistanceAtMost
// computes five per letter of the word); once it is spent, closest finds
// nothing more. Within the budget, closest(w) is Closest(w, candidates).
type nearIndex struct {
	candidates []string
	lower      [][]rune      // candidates[i], lower case
	byLen      map[int][]int // indices of the candidates of each length, ascending
	budget     int           // cells of the distance table left to compute
}

// nearBudget is the work nearIndex allows a configuration text: 1<<20
// cells, a few milliseconds. An ordinary file (a typo in a task's name
// among a few hundred sections) spends a few thousand.
const nearBudget = 1 << 20

func newNearIndex(candidates []string, budget int) *nearIndex {
	x := &nearIndex{candidates: candidates, lower: make([][]rune, len(candidates)), byLen: map[int][]int{}, budget: budget}
	for i, c := range candidates {
		x.lower[i] = []rune(strings.ToLower(c))
		x.byLen[len(x.lower[i])] = append(x.byLen[len(x.lower[i])], i)
	}
	return x
}

// closest is Closest(word, x.candidates) while the budget lasts: the
// candidate nearest to word, the first of them on a tie, or "".
func (x *nearIndex) closest(word string) string {
	lw := strings.ToLower(word)
	w := []rune(lw)
	cost := 5 * (len(w) + 1)
	best, bestD := -1, -1
	for l := len(w) - 2; l <= len(w)+2; l++ {
		for _, i := range x.byLen[l] {
			if best >= 0 && i > best && bestD == 0 {
				break
			}
			if x.budget < cost {
				x.budget = 0
				return x.pick(best)
			}
			x.budget -= cost
			d := editDistanceAtMost(w, x.lower[i], 2)
			if d != 0 && (d > 2 || 2*d >= len(lw)) {
				continue
			}
			if best < 0 || d < bestD || (d == bestD && i < best) {
				best, bestD = i, d
			}
		}
	}
	return x.pick(best)
}

func (x *nearIndex) pick(i int) string {
	if i < 0 {
		return ""
	}
	return x.candidates[i]
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
