package httpfetch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/connectorhq/connector/store"
)

// deleteUnreached deletes the records this completed crawl did not reach,
// except what a transiently failed page leads to: the failed pages and
// every unreached record reachable from them through the links recorded by
// earlier runs. A URL that redirected leads to the record its redirect
// ended at (record.From), so that a folder redirect ("/docs" → "/docs/")
// that fails, or a failed page linking to one, keeps what lies behind it.
//
// It holds the unreached URLs (with the URL that redirected to each), not
// their records: the links of the pages kept are read as they are
// followed, and the records deleted a batch at a time. A site whose pages
// all moved leaves every record unreached, and holding them all decoded,
// links and all, took gigabytes for a task of a million pages.
func (sr *syncRun) deleteUnreached() error {
	sr.priors.Clear()
	var keys []string
	cand := map[string]string{} // unreached URL → its record's From
	err := sr.ds.ForEach(func(k, v []byte) error {
		u, ok := strings.CutPrefix(string(k), urlPrefix)
		if !ok {
			return nil
		}
		run, ok := recordRun(v)
		if !ok {
			var seen struct {
				Run uint64 `json:"run"`
			}
			if err := json.Unmarshal(v, &seen); err != nil {
				return fmt.Errorf("httpfetch: datastore record %q: %w", k, err)
			}
			run = seen.Run
		}
		if run == sr.run {
			return nil
		}
		var from struct {
			From string `json:"from"`
		}
		if err := json.Unmarshal(v, &from); err != nil {
			return fmt.Errorf("httpfetch: datastore record %q: %w", k, err)
		}
		keys = append(keys, u)
		cand[u] = from.From
		return nil
	})
	if err != nil {
		return fmt.Errorf("httpfetch: %s: deletions: %w", sr.s.Task, err)
	}
	redirected := map[string]string{} // a URL that redirected → the record it led to
	for u, from := range cand {
		if from != "" {
			if _, own := cand[from]; !own {
				redirected[from] = u
			}
		}
	}
	protected := map[string]bool{}
	var stack []string
	protect := func(u string) {
		if _, ok := cand[u]; !ok {
			if u, ok = redirected[u]; !ok {
				return
			}
		}
		if !protected[u] {
			protected[u] = true
			stack = append(stack, u)
		}
	}
	sr.mu.Lock()
	for u := range sr.failed {
		protect(u)
	}
	sr.mu.Unlock()
	// The links of the pages kept, read a chunk of records at a time (a
	// site that is down keeps every page: one read each would be a
	// million reads).
	var chunk [][]byte
	for len(stack) > 0 {
		chunk = chunk[:0]
		for len(stack) > 0 && len(chunk) < 256 {
			chunk = append(chunk, urlKey(stack[len(stack)-1]))
			stack = stack[:len(stack)-1]
		}
		vals, err := store.GetMany(sr.ds, chunk)
		if err != nil {
			// What the pages kept lead to is not known: nothing is
			// deleted (as by a run cut short), rather than what they
			// may lead to.
			sr.log.Warn("the records of pages kept cannot be read: nothing is deleted this run", "error", err)
			return nil
		}
		for _, v := range vals {
			if v == nil {
				continue // gone meanwhile
			}
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			for _, l := range rec.Links {
				protect(l)
			}
		}
	}
	if len(protected) > 0 {
		sr.log.Info("pages kept because a page leading to them failed transiently", "pages", len(protected))
	}
	total := len(keys) - len(protected)
	doneN := 0
	var batch []string
	flush := func() error {
		if err := sr.applyDeletions(batch); err != nil {
			return err
		}
		doneN += len(batch)
		batch = batch[:0]
		pct := 100 * float64(doneN) / float64(total)
		sr.prog.set(sr.index, func(t *taskProgress) { t.deletionsPct = pct })
		return nil
	}
	for _, u := range keys {
		if protected[u] {
			continue
		}
		batch = append(batch, u)
		if len(batch) < sr.r.batchSize {
			continue
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return sr.applyDeletions(batch)
}

// applyDeletions deletes the records of urls, read now (one that is gone
// meanwhile is left alone).
func (sr *syncRun) applyDeletions(urls []string) error {
	if len(urls) == 0 {
		return nil
	}
	if err := sr.job.Checkpoint(sr.ctx); err != nil {
		return err
	}
	keys := make([][]byte, len(urls))
	for i, u := range urls {
		keys[i] = urlKey(u)
	}
	vals, err := store.GetMany(sr.ds, keys)
	if err != nil {
		return fmt.Errorf("httpfetch: %s: deletions: %w", sr.s.Task, err)
	}
	batch := make([]*change, 0, len(urls))
	for i, v := range vals {
		if v == nil {
			continue
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		batch = append(batch, sr.deletion(urls[i], rec))
	}
	if len(batch) == 0 {
		return nil
	}
	return sr.r.apply(sr.ctx, sr.ds, sr.counts, batch, sr.log, sr.fail)
}

// recordRun reads the run number of an encoded record (its top-level
// "run" member) without decoding the rest, for deleteUnreached, which
// looks at every record and decodes only those of earlier runs. It reads
// what encodeRecord writes; ok is false for anything else it meets (white
// space between tokens, a number that is not plain digits, no "run" member
// or another member whose name encoding/json would also match to Run): the
// caller then decodes v with encoding/json, which decides. It does not
// validate the rest of v: the store's checksums already tell a damaged
// value.
func recordRun(v []byte) (run uint64, ok bool) {
	if len(v) < 2 || v[0] != '{' {
		return 0, false
	}
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			start, escaped := i+1, false
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
					escaped = true
				}
			}
			if i >= len(v) {
				return 0, false
			}
			isKey := depth == 1 && (v[start-2] == '{' || v[start-2] == ',')
			if isKey && escaped {
				return 0, false // encoding/json would match the name unescaped
			}
			if !isKey || !bytes.EqualFold(v[start:i], []byte("run")) {
				continue
			}
			if ok || string(v[start:i]) != "run" || i+1 >= len(v) || v[i+1] != ':' {
				return 0, false // a second "run", or another spelling
			}
			j := i + 2
			digits := j
			for ; j < len(v) && '0' <= v[j] && v[j] <= '9'; j++ {
				d := uint64(v[j] - '0')
				if run > (math.MaxUint64-d)/10 {
					return 0, false // beyond uint64: encoding/json refuses it
				}
				run = run*10 + d
			}
			n := j - digits
			if n == 0 || (n > 1 && v[digits] == '0') || j >= len(v) || (v[j] != ',' && v[j] != '}') {
				return 0, false
			}
			ok = true
			i = j - 1
		case ' ', '\t', '\n', '\r':
			return 0, false // encodeRecord writes none
		}
	}
	return run, ok
}
