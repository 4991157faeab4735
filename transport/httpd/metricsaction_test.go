package httpd

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// TestRefusedRequestCountsUnderItsAction: a request the server read (or
// whose request line it read) and then refused, for the browser that sent
// it, for its Host header, or for a body over its action's limit, counts
// in connector_aci_requests_total under the action it named, as the
// request log shows it, not under "other": an alert on Fetch's denied or
// failed requests missed them
// (a page driving a browser to the port, a DNS rebinding attempt, a
// client whose bodies are too large), and "other" mixed them with
// actions that do not exist. An unknown action is still "other".
func TestRefusedRequestCountsUnderItsAction(t *testing.T) {
	t.Parallel()
	m := &outcomes{}
	e := startWith(t, setup{front: func(c *Config) {
		c.Metrics = m
		c.AllowedHosts = []string{"127.0.0.1"}
	}})
	addr := strings.TrimPrefix(e.base, "http://")
	body := "action=GetVersion&Pad=" + strings.Repeat("p", 2<<20)
	for _, tc := range []struct{ raw, code, want string }{
		{"GET /action=GetPid HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n", "ERRORREQUESTREFUSED", "GetPid denied"},
		{"GET /action=Fetch&FetchAction=Synchronize HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n", "ERRORREQUESTREFUSED", "Fetch denied"},
		{"GET /action=GetPid HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n", "ERRORREQUESTREFUSED", "GetPid denied"},
		{"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body, "ERRORREQUESTTOOLARGE", "GetVersion failure"},
		// Refused for the body it announces, before reading it.
		{"POST /action=GetVersion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n", "ERRORREQUESTTOOLARGE", "GetVersion failure"},
		{"GET /action=NoSuchAction HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n", "ERRORREQUESTREFUSED", "other denied"},
		{"GET /action=NoSuchAction HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "ERROR", "other failure"},
	} {
		before := len(m.all())
		reply := exchange(t, addr, tc.raw)
		require.Contains(t, string(reply), tc.code, "%q", tc.raw[:40])
		testwait.For(t, 5*time.Second, func() bool { return len(m.all()) > before }, "the request counted")
		require.Equal(t, []string{tc.want}, m.all()[before:], "%q", tc.raw[:40])
	}
}

// TestRequestOverTheParameterLimitCountsUnderItsAction: a request refused
// for [Server] MaxRequestParameters names its action (the reply and the
// request log say GETVERSION) and counts under it in
// connector_aci_requests_total, not under "other", as the other refusals
// of a request the server read do.
func TestRequestOverTheParameterLimitCountsUnderItsAction(t *testing.T) {
	t.Parallel()
	m := &outcomes{}
	e := startWith(t, setup{front: func(c *Config) {
		c.Metrics = m
		c.MaxRequestParameters = 16
	}})
	addr := strings.TrimPrefix(e.base, "http://")
	many := strings.Repeat("&P=1", 20)
	body := "action=GetVersion" + many
	for _, raw := range []string{
		"GET /action=GetVersion" + many + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body,
	} {
		before := len(m.all())
		reply := exchange(t, addr, raw)
		require.Contains(t, string(reply), "MaxRequestParameters", "%q", raw[:40])
		testwait.For(t, 5*time.Second, func() bool { return len(m.all()) > before }, "the request counted")
		require.Equal(t, []string{"GetVersion failure"}, m.all()[before:], "%q", raw[:40])
	}
}
