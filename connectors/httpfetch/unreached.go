package httpfetch

import (
	"encoding/json"
	"fmt"
	"strings"
)

// deleteUnreached deletes the records this completed crawl did not reach,
// except what a transiently failed page leads to: the failed pages and
// every unreached record reachable from them through the links recorded by
// earlier runs.
func (sr *syncRun) deleteUnreached() error {
	sr.priors.Clear()
	var keys []string
	cand := map[string]*record{}
	err := sr.ds.ForEach(func(k, v []byte) error {
		u, ok := strings.CutPrefix(string(k), urlPrefix)
		if !ok {
			return nil
		}
		var seen struct {
			Run uint64 `json:"run"`
		}
		if err := json.Unmarshal(v, &seen); err != nil {
			return fmt.Errorf("httpfetch: datastore record %q: %w", k, err)
		}
		if seen.Run == sr.run {
			return nil
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		keys = append(keys, u)
		cand[u] = rec
		return nil
	})
	if err != nil {
		return fmt.Errorf("httpfetch: %s: deletions: %w", sr.s.Task, err)
	}
	protected := map[string]bool{}
	var stack []string
	sr.mu.Lock()
	for u := range sr.failed {
		if _, ok := cand[u]; ok && !protected[u] {
			protected[u] = true
			stack = append(stack, u)
		}
	}
	sr.mu.Unlock()
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, l := range cand[u].Links {
			if _, ok := cand[l]; ok && !protected[l] {
				protected[l] = true
				stack = append(stack, l)
			}
		}
	}
	if len(protected) > 0 {
		sr.log.Info("pages kept because a page leading to them failed transiently", "pages", len(protected))
	}
	var batch []*change
	total := len(keys) - len(protected)
	doneN := 0
	for _, u := range keys {
		if protected[u] {
			continue
		}
		batch = append(batch, sr.deletion(u, cand[u]))
		if len(batch) < sr.r.batchSize {
			continue
		}
		if err := sr.applyDeletions(batch); err != nil {
			return err
		}
		doneN += len(batch)
		batch = batch[:0]
		pct := 100 * float64(doneN) / float64(total)
		sr.prog.set(sr.index, func(t *taskProgress) { t.deletionsPct = pct })
	}
	return sr.applyDeletions(batch)
}

func (sr *syncRun) applyDeletions(batch []*change) error {
	if len(batch) == 0 {
		return nil
	}
	if err := sr.job.Checkpoint(sr.ctx); err != nil {
		return err
	}
	return sr.r.apply(sr.ctx, sr.ds, sr.counts, batch, sr.log, sr.fail)
}
