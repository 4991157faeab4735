package mailfetch

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/gmailtest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/fetch"
)

// brokenMessages is a server in front of the Gmail API stand-in that
// answers an error (500 unless told otherwise) to every read of the
// messages it is told are broken, and counts those reads.
type brokenMessages struct {
	mu     sync.Mutex
	status map[string]int // the error answered; 0: none
	reads  map[string]*atomic.Int64
}

func (bm *brokenMessages) set(id string, broken bool) {
	code := 0
	if broken {
		code = http.StatusInternalServerError
	}
	bm.setStatus(id, code)
}

// setStatus makes the reads of a message answer code (0: the message).
func (bm *brokenMessages) setStatus(id string, code int) {
	bm.mu.Lock()
	defer bm.mu.Unlock()
	bm.status[id] = code
	if bm.reads[id] == nil {
		bm.reads[id] = &atomic.Int64{}
	}
}

func (bm *brokenMessages) readsOf(id string) int64 {
	bm.mu.Lock()
	defer bm.mu.Unlock()
	return bm.reads[id].Load()
}

func gmailRigBroken(t *testing.T) (*rig, *gmailtest.Server, *brokenMessages) {
	bm := &brokenMessages{status: map[string]int{}, reads: map[string]*atomic.Int64{}}
	g, api, _ := gmailRigVia(t, false, "", func(apiURL string) string {
		u, err := url.Parse(apiURL)
		require.NoError(t, err)
		proxy := httputil.NewSingleHostReverseProxy(u)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, id, _ := strings.Cut(r.URL.Path, "/messages/")
			bm.mu.Lock()
			code, n := bm.status[id], bm.reads[id]
			bm.mu.Unlock()
			if n != nil {
				n.Add(1)
			}
			if code != 0 && r.Method == http.MethodGet {
				msg, reason := "Backend Error", "backendError"
				if code < 500 {
					msg, reason = "Precondition check failed.", "failedPrecondition"
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_, _ = fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"errors":[{"reason":%q,"message":%q}]}}`, code, msg, reason, msg)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		return front.URL + strings.TrimPrefix(apiURL, u.Scheme+"://"+u.Host)
	})
	return g, api, bm
}

// A message the Gmail API refuses to read on every run (a 500 for that
// message alone, here) stopped every Synchronize at it: the action ended
// as Error, its history id was never recorded, and the messages after it
// were never indexed, run after run. It is now skipped and reported (a
// failure naming its reference, counted in errors) while the others are
// indexed and the history id moves on; it is read again by the next
// MaxMessageAttempts-1 runs (a 500 is the server's failure: those runs
// span a day here, transientGiveUp), then given up until it changes.
func TestGmailMessageThatAlwaysFailsIsSkippedAndRetriedBoundedly(t *testing.T) {
	g, api, bm := gmailRigBroken(t)
	m1 := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "one", Text: "1"}.Raw(), "INBOX")
	bad := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "poison", Text: "2"}.Raw(), "INBOX")
	m3 := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "three", Text: "3"}.Raw(), "INBOX")
	bm.set(bad, true)

	_, job, err := g.run("Synchronize")
	require.NoError(t, err, "one message that cannot be read does not fail the task")
	require.Equal(t, "seen=2 added=2 updated=0 deleted=0 unchanged=0 ingestadded=2 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=1", summary(countsOf(job, "GMAIL")))
	require.Len(t, g.target.Find("SUBJECT", "one"), 1, m1)
	require.Len(t, g.target.Find("SUBJECT", "three"), 1, m3)
	fl := job.Failures()
	require.NotNil(t, fl)
	require.Len(t, fl.Items, 1)
	require.Equal(t, "https://mail.google.com/mail/u/alice@example.com/#all/"+bad, fl.Items[0].Url)
	require.Contains(t, fl.Items[0].Reason, "500")
	require.NotContains(t, fl.Items[0].Reason, "Bearer")

	// The history moved on: a message delivered now is indexed, and the
	// broken one is read again, up to MaxMessageAttempts runs in all.
	m4 := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "four", Text: "4"}.Raw(), "INBOX")
	for run := 2; run <= maxMessageAttempts; run++ {
		g.advance(transientGiveUp / (maxMessageAttempts - 1))
		before := bm.readsOf(bad)
		_, job, err = g.run("Synchronize")
		require.NoError(t, err)
		require.Greater(t, bm.readsOf(bad), before, "run %d reads the broken message again", run)
		require.Equal(t, uint64(1), countsOf(job, "GMAIL").Errors, "run %d", run)
	}
	require.Len(t, g.target.Find("SUBJECT", "four"), 1, m4)
	require.Equal(t, 1, g.target.AddsOf("https://mail.google.com/mail/u/alice@example.com/#all/"+m1), "delivered once")

	// Given up: not read again while it does not change.
	before := bm.readsOf(bad)
	_, job, err = g.run("Synchronize")
	require.NoError(t, err)
	require.Equal(t, before, bm.readsOf(bad))
	require.Equal(t, "seen=3 added=0 updated=0 deleted=0 unchanged=3 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))

	// Once it changes (a label added), it is read again, and indexed now
	// that the API serves it.
	bm.set(bad, false)
	api.Relabel(bad, []string{"STARRED"}, nil)
	_, job, err = g.run("Synchronize")
	require.NoError(t, err)
	require.Equal(t, "seen=4 added=1 updated=0 deleted=0 unchanged=3 ingestadded=1 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
	require.Len(t, g.target.Find("SUBJECT", "poison"), 1)
}

// A message that failed once and reads again on the next run (the API's
// trouble was passing) is indexed by that run, though nothing of it
// changed; a message that failed and was deleted meanwhile leaves nothing
// to retry.
func TestGmailMessageThatFailedOnceIsIndexedByTheNextRun(t *testing.T) {
	g, api, bm := gmailRigBroken(t)
	bad := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "flaky", Text: "2"}.Raw(), "INBOX")
	gone := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "gone", Text: "3"}.Raw(), "INBOX")
	bm.set(bad, true)
	bm.set(gone, true)
	_, job, err := g.run("Synchronize")
	require.NoError(t, err)
	require.Equal(t, uint64(2), countsOf(job, "GMAIL").Errors)
	require.Empty(t, g.target.Find("SUBJECT", "flaky"))

	bm.set(bad, false)
	bm.set(gone, false)
	api.Remove(gone)
	_, job, err = g.run("Synchronize")
	require.NoError(t, err)
	require.Equal(t, "seen=1 added=1 updated=0 deleted=0 unchanged=0 ingestadded=1 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
	require.Len(t, g.target.Find("SUBJECT", "flaky"), 1)
	require.Empty(t, g.target.Find("SUBJECT", "gone"))

	// Nothing left to retry.
	before := bm.readsOf(gone)
	g.mustRun("Synchronize")
	require.Equal(t, before, bm.readsOf(gone))
}

// When every message fails (the API answers 500 to all of them), the
// server is failing, not the messages: the task ends as Error after
// maxNewFailuresInARow of them rather than giving the whole mailbox up.
func TestGmailManyMessagesFailingInARowFailTheTask(t *testing.T) {
	g, api, bm := gmailRigBroken(t)
	for i := 0; i < maxNewFailuresInARow+5; i++ {
		bm.set(api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "m", Text: "x"}.Raw(), "INBOX"), true)
	}
	_, job, err := g.run("Synchronize")
	require.ErrorContains(t, err, "messages in a row could not be read, the last: gmail: read message")
	require.Equal(t, uint64(maxNewFailuresInARow), countsOf(job, "GMAIL").Errors)
}

// failures returns the keys of the messages the task remembers it could
// not read.
func (g *rig) failures(task string) []string {
	g.t.Helper()
	ds, err := g.st.Datastore(task)
	require.NoError(g.t, err)
	st, err := loadState(ds)
	require.NoError(g.t, err)
	var keys []string
	for _, f := range st.failed {
		for key := range f {
			keys = append(keys, key)
		}
	}
	return keys
}

// A message given up (it failed maxMessageAttempts runs) and then
// deleted from the mailbox, moved to the trash or relabelled out of the
// labels indexed kept its failure entry in the datastore for ever: the
// plan named only messages with a record as gone, and a message given up
// is not retried, so nothing ever found it gone. Every run read the
// entry again, and a mailbox whose broken mail is cleaned up gathered
// them for good. The plan now names a remembered failure gone as it
// names a record gone, whether from the history or from a full listing.
func TestGmailGivenUpMessageGoneIsForgotten(t *testing.T) {
	for _, how := range []string{"deleted", "trashed", "history expired"} {
		t.Run(how, func(t *testing.T) {
			g, api, bm := gmailRigBroken(t)
			api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "fine", Text: "1"}.Raw(), "INBOX")
			bad := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "poison", Text: "2"}.Raw(), "INBOX")
			bm.set(bad, true)
			for range maxMessageAttempts + 1 {
				g.mustRun("Synchronize")
			}
			require.Equal(t, []string{bad}, g.failures("GMAIL"), "given up, remembered")

			switch how {
			case "deleted":
				api.Remove(bad)
			case "trashed":
				api.Relabel(bad, []string{"TRASH"}, []string{"INBOX"})
			case "history expired":
				api.Remove(bad)
				api.ForgetHistory()
			}
			before := bm.readsOf(bad)
			_, job := g.mustRun("Synchronize")
			require.Empty(t, g.failures("GMAIL"), "gone: forgotten")
			require.Equal(t, before, bm.readsOf(bad))
			require.Equal(t, "seen=1 added=0 updated=0 deleted=0 unchanged=1 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
		})
	}
}

// A message the Gmail API answered a 5xx for (its servers failing for a
// while: a 500 Backend Error, a 503) on 3 runs in a row was given up as a
// message the API refuses for good is: not read again until it changes,
// which a message rarely does, so a mailbox read by hourly runs through a
// three-hour Google incident never indexed the messages the incident hit.
// A 5xx now keeps the message read again by every run until it has failed
// for a day (and 3 runs).
func TestGmailMessageFailingWith5xxIsRetriedForADay(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			g, bm, bad := oneBroken(t, "flaky", code)
			for run := 1; run <= maxMessageAttempts+2; run++ {
				job := readsAgain(t, g, bm, bad, run)
				require.Equal(t, uint64(1), countsOf(job, "GMAIL").Errors, "run %d", run)
				g.advance(time.Hour)
			}
			// Google recovered: the message is indexed.
			bm.setStatus(bad, 0)
			g.mustRun("Synchronize")
			require.Len(t, g.target.Find("SUBJECT", "flaky"), 1)
			require.Empty(t, g.failures("GMAIL"))
		})
	}
}

// A message the API answers a 5xx for day after day is given up once it
// has failed for a day and 3 runs; one it refuses for good (a 4xx) after
// 3 runs, as before.
func TestGmailMessageFailingIsGivenUp(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadRequest} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			g, bm, bad := oneBroken(t, "poison", code)
			for run := 1; run <= maxMessageAttempts; run++ {
				if code >= 500 && run == maxMessageAttempts {
					g.advance(transientGiveUp)
				}
				readsAgain(t, g, bm, bad, run)
			}
			before := bm.readsOf(bad)
			_, job := g.mustRun("Synchronize")
			require.Equal(t, before, bm.readsOf(bad), "given up")
			require.Zero(t, countsOf(job, "GMAIL").Errors)
			require.Equal(t, []string{bad}, g.failures("GMAIL"))
		})
	}
}

// oneBroken is gmailRigBroken with one message, whose reads answer code.
func oneBroken(t *testing.T, subject string, code int) (*rig, *brokenMessages, string) {
	g, api, bm := gmailRigBroken(t)
	bad := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: subject, Text: "2"}.Raw(), "INBOX")
	bm.setStatus(bad, code)
	return g, bm, bad
}

// readsAgain runs a Synchronize that must read the broken message again.
func readsAgain(t *testing.T, g *rig, bm *brokenMessages, bad string, run int) *fetch.Job {
	t.Helper()
	before := bm.readsOf(bad)
	_, job := g.mustRun("Synchronize")
	require.Greater(t, bm.readsOf(bad), before, "run %d reads it again", run)
	return job
}

// A message the IMAP server cannot give (Dovecot drops the connection
// when its mail file cannot be read) stopped every Synchronize at it: the
// messages after it in the folder were never indexed, run after run. It
// is now the suspect of the failed fetch: read last by the next runs, so
// that the others are indexed, and given up (not read again while it is
// in the folder) once it has failed for transientGiveUp and
// maxMessageAttempts runs, so that the task's runs end well again.
func TestIMAPMessageTheServerCannotGiveDoesNotHoldBackTheFolder(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "one", Text: "x"}.Raw(), "")
	bad := d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "two", Text: "y"}.Raw(), "")
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "three", Text: "z"}.Raw(), "")
	require.NoError(t, os.Chmod(bad, 0))
	g := newRig(t, mailConfig(d, ""))

	_, _, err := g.run("Synchronize")
	require.Error(t, err, "the connection was lost")
	require.Len(t, g.target.Find("SUBJECT", "one"), 1)

	g.advance(transientGiveUp / (maxMessageAttempts - 1))
	_, _, err = g.run("Synchronize")
	require.Error(t, err)
	require.Len(t, g.target.Find("SUBJECT", "three"), 1, "the message after it is indexed")
	require.Equal(t, 2, g.target.Len())

	for run := 3; run <= maxMessageAttempts; run++ {
		g.advance(transientGiveUp / (maxMessageAttempts - 1))
		_, _, err = g.run("Synchronize")
		require.Error(t, err, "run %d reads it again", run)
	}
	_, job, err := g.run("Synchronize")
	require.NoError(t, err, "given up")
	require.Equal(t, "seen=2 added=0 updated=0 deleted=0 unchanged=2 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "MAIL")))

	// A message arriving now is indexed.
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "four", Text: "w"}.Raw(), "")
	_, _, err = g.run("Synchronize")
	require.NoError(t, err)
	require.Len(t, g.target.Find("SUBJECT", "four"), 1)

	// Once it leaves the folder, it is forgotten.
	ds, err := g.st.Datastore("MAIL")
	require.NoError(t, err)
	failures := func() int {
		st, err := loadState(ds)
		require.NoError(t, err)
		return len(st.failed["INBOX"])
	}
	require.Equal(t, 1, failures())
	require.NoError(t, os.Remove(bad))
	_, _, err = g.run("Synchronize")
	require.NoError(t, err)
	require.Zero(t, failures())
}

// gmailRigThrottled is a Gmail rig whose API answers the first n
// requests for messages/<id> (reads of the message) with status code (a
// 429, or the 403 Google gives for a user's rate limit) and Retry-After
// retry ("" for none), then passes them through.
func gmailRigThrottled(t *testing.T, id *atomic.Value, n int64, code int, retry string) (*rig, *gmailtest.Server, func() int64) {
	var answered atomic.Int64
	g, api, _ := gmailRigVia(t, false, "", func(apiURL string) string {
		u, err := url.Parse(apiURL)
		require.NoError(t, err)
		proxy := httputil.NewSingleHostReverseProxy(u)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			want, _ := id.Load().(string)
			if want != "" && strings.HasSuffix(r.URL.Path, "/messages/"+want) && answered.Load() < n {
				answered.Add(1)
				if retry != "" {
					w.Header().Set("Retry-After", retry)
				}
				reason := "rateLimitExceeded"
				if code == http.StatusForbidden {
					reason = "userRateLimitExceeded"
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_, _ = fmt.Fprintf(w, `{"error":{"code":%d,"message":"User-rate limit exceeded.","errors":[{"reason":%q,"message":"User-rate limit exceeded."}]}}`, code, reason)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		return front.URL + strings.TrimPrefix(apiURL, u.Scheme+"://"+u.Host)
	})
	return g, api, answered.Load
}

// Google answers a client over its per-user rate limit with 429 (or 403
// userRateLimitExceeded), asking it to slow down, and its guide asks for
// the request to be sent again after a wait; the REST connectors do so
// (restsync.Client). The Gmail transport ended the task as Error at the
// first one, so a large mailbox's first Synchronize failed again and
// again (each run indexing what it read until the next throttling), and
// a 403 was reported as "authentication failed".
func TestGmailRateLimitIsWaitedOut(t *testing.T) {
	for _, c := range []struct {
		name  string
		code  int
		retry string
	}{{"429 with Retry-After", http.StatusTooManyRequests, "0"}, {"403 userRateLimitExceeded", http.StatusForbidden, ""}} {
		t.Run(c.name, func(t *testing.T) {
			var id atomic.Value
			g, api, answered := gmailRigThrottled(t, &id, 2, c.code, c.retry)
			m := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "throttled", Text: "1"}.Raw(), "INBOX")
			api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "other", Text: "2"}.Raw(), "INBOX")
			id.Store(m)
			_, job, err := g.run("Synchronize")
			require.NoError(t, err)
			require.Equal(t, int64(2), answered(), "throttled twice")
			require.Len(t, g.target.Find("SUBJECT", "throttled"), 1)
			require.Zero(t, countsOf(job, "GMAIL").Errors)
		})
	}
}

// A wait longer than the connector waits for (Google's daily quota: hours)
// still ends the task as Error, at once, saying so; not as an
// authentication failure.
func TestGmailRateLimitTooLongEndsTheTask(t *testing.T) {
	var id atomic.Value
	g, api, _ := gmailRigThrottled(t, &id, 1000, http.StatusTooManyRequests, "86400")
	id.Store(api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "throttled", Text: "1"}.Raw(), "INBOX"))
	_, _, err := g.run("Synchronize")
	require.ErrorContains(t, err, "429")
	require.NotContains(t, err.Error(), "authentication")
}
