package httpd

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// requestTextReference is requestText as it was written before it
// appended into a pooled buffer: what the request log must keep showing.
func requestTextReference(s *Server, req *aci.Request) string {
	if req == nil {
		return ""
	}
	var b strings.Builder
	if req.Action != "" {
		b.WriteString("action=")
		b.WriteString(url.QueryEscape(req.Action))
	}
	params := req.Params
	if len(req.Uploads) > 0 {
		params = make(messages.Params, len(req.Params))
		copy(params, req.Params)
		for _, u := range req.Uploads {
			params[u.Index] = &messages.Param{Name: req.Params[u.Index].GetName()}
		}
	}
	shown := s.shownParams(params)
	for i, p := range shown {
		if b.Len() >= maxLogged {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(head(p.GetName(), maxLogged-b.Len())))
		b.WriteByte('=')
		if u, ok := req.Upload(i); ok && len(shown) == len(req.Params) {
			b.WriteString(uploadText(u))
			continue
		}
		b.WriteString(url.QueryEscape(head(p.GetValue(), maxLogged-b.Len())))
	}
	out := b.String()
	if len(out) > maxLogged {
		out = out[:maxLogged]
		if i := strings.LastIndexByte(out, '%'); i >= len(out)-2 {
			out = out[:i]
		}
	}
	return out
}

// TestRequestTextAsBefore holds requestText to the text the request log
// showed before it was rewritten to allocate less: secrets redacted,
// uploads by size, escapes never cut, at most maxLogged bytes.
func TestRequestTextAsBefore(t *testing.T) {
	s := &Server{cfg: Config{Repository: secretRepo{newTestRepo()}}}
	s.bufs.New = func() any { b := make([]byte, 0, 16); return &b }
	reqs := []*aci.Request{
		nil,
		{},
		{Action: "GETSTATUS"},
		{Action: "QUEUEINFO", Params: messages.Params{{Name: "QueueName", Value: "fetch"}, {Name: "QueueAction", Value: "GetStatus"}, {Name: "Token", Value: "abc=="}}},
		{Action: "FETCH", Params: messages.Params{{Name: "[MyTask]AuthPassword", Value: "hunter2"}, {Name: "client_secret", Value: "s3"},
			{Name: "Url", Value: "http://u:pw@host/x y"}, {Name: "Plain", Value: "é&="}}},
		{Action: "FETCH", Params: messages.Params{{Name: "Config", Value: "long"}, {Name: "File", Value: strings.Repeat("x", 5000)}},
			Uploads: []aci.Upload{{Index: 1, FileName: "a b.xml", Size: 5000}}},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 300 {
		// Values near the cut, with escapes falling on it.
		v := strings.Repeat("a", 900+r.IntN(200)) + strings.Repeat("%", r.IntN(5)) + strings.Repeat("é", r.IntN(5))
		req := &aci.Request{Action: "FETCH", Params: messages.Params{{Name: "Name", Value: v[:r.IntN(len(v))]}, {Name: strings.Repeat("&", r.IntN(600)), Value: v}}}
		if n%3 == 0 {
			req.Params = append(req.Params, &messages.Param{Name: "Password", Value: v})
		}
		reqs = append(reqs, req)
	}
	for i, req := range reqs {
		want := requestTextReference(s, req)
		got := s.requestText(req)
		require.Equal(t, want, got, "request %d", i)
		require.LessOrEqual(t, len(got), maxLogged)
		require.NotContains(t, got, "hunter2")
	}
}

// TestShownParamsCopiesOnlyWhatChanges: shownParams never changes its
// argument, and answers with it when nothing needs redacting.
func TestShownParamsCopiesOnlyWhatChanges(t *testing.T) {
	s := &Server{cfg: Config{Repository: newTestRepo()}}
	plain := messages.Params{{Name: "QueueName", Value: "fetch"}, {Name: "Token", Value: "abc"}}
	require.Equal(t, plain, s.shownParams(plain))
	require.Zero(t, testing.AllocsPerRun(10, func() { s.shownParams(plain) }))
	secretive := messages.Params{{Name: "A", Value: "1"}, {Name: "MyPassword", Value: "x"}, {Name: "U", Value: "http://a:b@c/"}, {Name: "B", Value: "2"}}
	shown := s.shownParams(secretive)
	require.Equal(t, messages.Params{{Name: "A", Value: "1"}, {Name: "MyPassword", Value: "[REDACTED]"}, {Name: "U", Value: "http://a:[REDACTED]@c/"}, {Name: "B", Value: "2"}}, shown)
	require.Equal(t, "x", secretive[1].Value)
	require.Equal(t, "http://a:b@c/", secretive[2].Value)
	require.Same(t, secretive[0], shown[0])
	require.Same(t, secretive[3], shown[3])
}
