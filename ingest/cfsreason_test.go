package ingest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The reason a non-2xx reply's error quotes (the log, the action's
// failures) is cut at maxReasonBytes; the password of a URL in it is
// redacted wherever the cut falls. The text was cut short before it was
// redacted: a URL whose '@' lay past the cut was no URL with a password
// to RedactURLs, and the cut kept the password's start ("see
// http://admin:hunter2secr…"); so did a body cut at the part of it read
// (16 times maxReasonBytes) with a URL at that end.
func TestCFSErrorReasonCutNeverShowsAPassword(t *testing.T) {
	t.Parallel()
	const url = "http://admin:hunter2secret@cfs01.example/ingest"
	check := func(desc, body string) {
		t.Helper()
		msg := statusError("502 Bad Gateway", []byte(body)).Error()
		require.LessOrEqual(t, len(msg), len("CFS answered HTTP 502 Bad Gateway: ")+maxReasonBytes+len("…"), desc)
		i := strings.Index(msg, "admin:")
		if i < 0 {
			return
		}
		rest := msg[i+len("admin:"):]
		require.True(t, rest == "" || strings.HasPrefix(rest, "[REDACTED]") || strings.HasPrefix(rest, "…"),
			"%s: the password shows: %q", desc, msg[max(0, len(msg)-60):])
	}
	// Cut at maxReasonBytes anywhere in or around the URL.
	for pad := maxReasonBytes - len(url) - 20; pad <= maxReasonBytes+5; pad++ {
		check("text", strings.Repeat("x", pad)+" see "+url+" for details")
		check("page", "<html><body><p>"+strings.Repeat("y", pad)+" see "+url+"</p></body></html>")
	}
	// The body read is cut (16*maxReasonBytes) in the URL, its text short
	// (markup and white space left out).
	for _, n := range []int{10, 20, 30, 40} {
		head := 16*maxReasonBytes - n // the URL's first n bytes are read
		check("markup", "<html>"+strings.Repeat("<br>", (head-6)/4)+strings.Repeat(" ", (head-6)%4)+url)
		check("spaces", "down"+strings.Repeat(" ", head-4)+url)
	}
	// What is not a password stays.
	require.Equal(t, "CFS answered HTTP 503 Service Unavailable: queue full at http://cfs01:9100/ingest, retry",
		statusError("503 Service Unavailable", []byte("queue full at http://cfs01:9100/ingest, retry")).Error())
}
