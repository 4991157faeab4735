package httpd

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// TestUnreadableRequestIsAFailure: a request fasthttp cannot read (a
// request line and headers over the 16 KiB the server reads, answered
// ERRORREQUESTTOOLARGE; a line that is not HTTP, ERRORBADREQUEST) is a
// failure in the metrics, as every other error reply is, under "other"
// (fasthttp keeps nothing of a request line it could not read with its
// headers). Before, it reached no handler and was counted nowhere:
// connector_aci_requests_total showed no failure while a client's long
// GET queries were all refused.
func TestUnreadableRequestIsAFailure(t *testing.T) {
	t.Parallel()
	m := &outcomes{}
	e := startWith(t, setup{front: func(c *Config) { c.Metrics = m }})
	addr := strings.TrimPrefix(e.base, "http://")
	for _, tc := range []struct{ raw, code, want string }{
		{"GET /action=GetVersion&Pad=" + strings.Repeat("p", 20000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "ERRORREQUESTTOOLARGE", "other failure"},
		{"GET /action=GetVersion HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 20000) + "\r\n\r\n", "ERRORREQUESTTOOLARGE", "other failure"},
		{"GET /action=GetVersion HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n", "ERRORBADREQUEST", "other failure"},
		{"GET /action=GetVersion HTTP/1.1\r\n\r\n", "ERRORBADREQUEST", "other failure"}, // no Host
		{"JUNK\r\n\r\n", "ERRORBADREQUEST", "other failure"},
	} {
		before := len(m.all())
		reply := exchange(t, addr, tc.raw)
		require.Contains(t, string(reply), tc.code, "%q", tc.raw[:min(len(tc.raw), 30)])
		testwait.For(t, 5*time.Second, func() bool { return len(m.all()) > before }, "the request counted")
		require.Equal(t, []string{tc.want}, m.all()[before:], "%q", tc.raw[:min(len(tc.raw), 30)])
	}
}

// An unreadable request was timed from the zero time (fasthttp sets no
// request time before it has read one): 292 years, the largest
// duration, went into connector_aci_request_duration_seconds with each
// one, so that a single port scan made the sum (and every mean computed
// from it, rate(_sum) / rate(_count)) of action "other" meaningless for
// good, and put it in the +Inf bucket. It is now timed as every other
// request is: from when the server has it to its answer.
func TestUnreadableRequestIsTimedFromItsAnswer(t *testing.T) {
	t.Parallel()
	m := &outcomes{}
	e := startWith(t, setup{front: func(c *Config) { c.Metrics = m }})
	reply := exchange(t, strings.TrimPrefix(e.base, "http://"), "JUNK\r\n\r\n")
	require.Contains(t, string(reply), "ERRORBADREQUEST")
	testwait.For(t, 5*time.Second, func() bool { return len(m.durations()) == 1 }, "the request counted")
	d := m.durations()[0]
	require.GreaterOrEqual(t, d, time.Duration(0))
	require.Less(t, d, time.Hour, "a duration of this request, not since the zero time")
}
