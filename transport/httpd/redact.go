package httpd

import (
	"net/url"
	"strconv"
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
//
// A file part of a multipart body (aci.Upload) is shown by its size, and
// file name when it has one, never by its content: "Name=[file a.xml, 52
// bytes]" or "Name=[52 bytes]". The brackets and spaces are left
// unescaped, so the marker cannot be mistaken for a value (values are
// percent-encoded, which never leaves a bracket or a space).
func (s *Server) requestText(req *aci.Request) string {
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
		// File contents never reach the redaction or the log.
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
		// Only what can still be shown is escaped: a value may be as
		// large as the body.
		b.WriteString(url.QueryEscape(head(p.GetValue(), maxLogged-b.Len())))
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

// uploadText is how requestText shows a file part: "[file NAME, N bytes]",
// or "[N bytes]" without a file name (the name percent-encoded).
func uploadText(u aci.Upload) string {
	size := strconv.Itoa(u.Size) + " bytes]"
	if u.Size == 1 {
		size = "1 byte]"
	}
	if u.FileName == "" {
		return "[" + size
	}
	return "[file " + url.QueryEscape(u.FileName) + ", " + size
}

// head returns the first n bytes of s (all of it when shorter; none for
// n <= 0).
func head(s string, n int) string {
	return s[:max(0, min(n, len(s)))]
}
