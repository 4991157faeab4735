package httpd

import (
	"net/url"
	"strings"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/transport/aci"
)

// maxLogged bounds the request text kept per GetRequestLog entry and log
// line.
const maxLogged = 1024

// shownParams returns params as they may be shown to anyone: the
// repository's secrets (settings its schema marks secret, in overrides and
// in Config fragments) redacted, then every value of a name that looks
// secret (secret.SensitiveName) and the password of every URL
// (secret.RedactURLs) redacted too. It is the one place parameters are
// made presentable: the request log, the server log and
// GetActionParameters all go through it.
func (s *Server) shownParams(params messages.Params) messages.Params {
	if r, ok := s.cfg.Repository.(fetch.Secrets); ok {
		params = r.Redact(params)
	}
	out := make(messages.Params, len(params))
	for i, p := range params {
		v := p.GetValue()
		switch {
		case secret.SensitiveName(p.GetName()):
			v = secret.Redacted
		default:
			v = secret.RedactURLs(v)
		}
		if v == p.GetValue() {
			out[i] = p
			continue
		}
		out[i] = &messages.Param{Name: p.GetName(), Value: v}
	}
	return out
}

// requestText renders a parsed request for the request log and the server
// log: "action=NAME&Param=Value&...", percent-encoded, every parameter
// the request carried (URI and body, in order) with secrets redacted
// (shownParams), cut to maxLogged bytes. Headers are never included. It is
// the single seam through which a request's parameters become a log
// entry; nil (a request that could not be parsed at all) gives "".
func (s *Server) requestText(req *aci.Request) string {
	if req == nil {
		return ""
	}
	var b strings.Builder
	if req.Action != "" {
		b.WriteString("action=")
		b.WriteString(url.QueryEscape(req.Action))
	}
	for _, p := range s.shownParams(req.Params) {
		if b.Len() >= maxLogged {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.GetName()))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.GetValue()))
	}
	out := b.String()
	if len(out) > maxLogged {
		out = out[:maxLogged]
		// do not end inside a %XX escape
		if i := strings.LastIndexByte(out, '%'); i >= len(out)-2 {
			out = out[:i]
		}
	}
	return out
}
