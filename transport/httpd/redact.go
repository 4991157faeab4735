package httpd

import (
	"bytes"
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
// GetActionParameters all go through it. params is never changed: when a
// value is redacted the result is a copy, otherwise it may be params
// itself (or the repository's redacted copy).
func (s *Server) shownParams(params messages.Params) messages.Params {
	if r, ok := s.cfg.Repository.(fetch.Secrets); ok {
		params = r.Redact(params)
	}
	var out messages.Params // a copy, made only once a value must change
	for i, p := range params {
		v := p.GetValue()
		switch {
		case secret.SensitiveName(p.GetName()):
			v = secret.Redacted
		default:
			v = secret.RedactURLs(v)
		}
		if v == p.GetValue() {
			if out != nil {
				out[i] = p
			}
			continue
		}
		if out == nil {
			out = make(messages.Params, len(params))
			copy(out, params[:i])
		}
		out[i] = &messages.Param{Name: p.GetName(), Value: v}
	}
	if out == nil {
		return params
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
// bytes]" or "Name=[52 bytes]"; so is a Config value longer than
// maxShownConfig, which is never read: "Config=[4096 bytes]". The
// brackets and spaces are left unescaped, so the marker cannot be
// mistaken for a value (values are percent-encoded, which never leaves a
// bracket or a space).
func (s *Server) requestText(req *aci.Request) string {
	if req == nil {
		return ""
	}
	bp := s.bufs.Get().(*[]byte)
	b := s.appendRequestText((*bp)[:0], req)
	out := string(b)
	if cap(b) <= 1<<20 {
		*bp = b[:0]
		s.bufs.Put(bp)
	}
	return out
}

// appendRequestText appends requestText's text to b, which it may use in
// full: the text is written first, then cut to maxLogged.
func (s *Server) appendRequestText(b []byte, req *aci.Request) []byte {
	base := len(b)
	if req.Action != "" {
		b = append(b, "action="...)
		// Only what can be shown: the name of an action no route serves
		// may be as large as the body, and b is kept (the log's entry).
		b = aci.AppendQueryEscape(b, head(req.Action, maxLogged))
	}
	// The other action pairs, which nothing acts on, as they came: the
	// log shows that the request named them.
	for _, a := range req.OtherActions {
		if len(b)-base >= maxLogged {
			break
		}
		if len(b) > base {
			b = append(b, '&')
		}
		b = aci.AppendQueryEscape(b, a.Name)
		b = append(b, '=')
		if a.File != nil {
			b = append(b, uploadText(*a.File)...)
			continue
		}
		b = aci.AppendQueryEscape(b, head(a.Value, maxLogged-(len(b)-base)))
	}
	params := req.Params
	if len(req.Uploads) > 0 || hasLargeConfig(req.Params) {
		// File contents, and Config values too long to show, never reach
		// the redaction or the log.
		params = make(messages.Params, len(req.Params))
		copy(params, req.Params)
		for _, u := range req.Uploads {
			params[u.Index] = &messages.Param{Name: req.Params[u.Index].GetName()}
		}
		for i, p := range req.Params {
			if largeConfig(p) {
				params[i] = &messages.Param{Name: p.GetName()}
			}
		}
	}
	shown := s.shownParams(params)
	for i, p := range shown {
		n := len(b) - base
		if n >= maxLogged {
			break
		}
		if n > 0 {
			b = append(b, '&')
		}
		b = aci.AppendQueryEscape(b, head(p.GetName(), maxLogged-(len(b)-base)))
		b = append(b, '=')
		if u, ok := req.Upload(i); ok && len(shown) == len(req.Params) {
			b = append(b, uploadText(u)...)
			continue
		}
		if len(shown) == len(req.Params) && largeConfig(req.Params[i]) {
			b = append(b, sizeText(len(req.Params[i].GetValue()))...)
			continue
		}
		// Only what can still be shown is escaped: a value may be as
		// large as the body.
		b = aci.AppendQueryEscape(b, head(p.GetValue(), maxLogged-(len(b)-base)))
	}
	if len(b)-base > maxLogged {
		b = b[:base+maxLogged]
		// do not end inside a %XX escape
		if i := bytes.LastIndexByte(b[base:], '%'); i >= maxLogged-2 {
			b = b[:base+i]
		}
	}
	return b
}

// uploadText is how requestText shows a file part: "[file NAME, N bytes]",
// or "[N bytes]" without a file name (the name percent-encoded).
func uploadText(u aci.Upload) string {
	if u.FileName == "" {
		return sizeText(u.Size)
	}
	return "[file " + url.QueryEscape(u.FileName) + ", " + sizeText(u.Size)[1:]
}

// sizeText is "[N bytes]" ("[1 byte]").
func sizeText(n int) string {
	if n == 1 {
		return "[1 byte]"
	}
	return "[" + strconv.Itoa(n) + " bytes]"
}

// maxShownConfig is the longest Config value (a base64 configuration
// fragment) that requestText shows. Showing one means redacting its
// secrets, and so reading the whole fragment with the configuration
// reader (fetch.Secrets Redact), which costs about a microsecond or more
// per byte; every request is logged, whatever its action and before any
// role or size is checked, so one request of MaxRequestBytes from any
// client would cost seconds to minutes of CPU. A longer value is shown by
// its size, as a file part is ("Config=[N bytes]"), never read. It is
// maxLogged: a longer value could not be shown whole anyway.
const maxShownConfig = maxLogged

// largeConfig reports whether p is a Config parameter too long to show
// (maxShownConfig).
func largeConfig(p *messages.Param) bool {
	return len(p.GetValue()) > maxShownConfig && strings.EqualFold(strings.TrimSpace(p.GetName()), "Config")
}

func hasLargeConfig(params messages.Params) bool {
	for _, p := range params {
		if largeConfig(p) {
			return true
		}
	}
	return false
}

// head returns the first n bytes of s (all of it when shorter; none for
// n <= 0).
func head(s string, n int) string {
	return s[:max(0, min(n, len(s)))]
}
