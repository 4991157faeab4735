package loadgen

import (
	"crypto/tls"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/transport/aci"
)

// client sends ACI requests to the one target host.
type client struct {
	hc      *fasthttp.HostClient
	host    string
	form    Form
	timeout time.Duration
	format  string // "&ResponseFormat=..." or ""
}

// spareConns are connections beyond one per worker, for setup and
// cleanup requests sent while workers are busy.
const spareConns = 4

func newClient(s *settings, t *target) *client {
	hc := &fasthttp.HostClient{
		Addr:                      t.addr,
		Name:                      "connector-loadgen",
		IsTLS:                     t.isTLS,
		MaxConns:                  s.workers + spareConns,
		MaxConnWaitTimeout:        s.Timeout,
		ReadTimeout:               s.Timeout,
		WriteTimeout:              s.Timeout,
		MaxIdleConnDuration:       30 * time.Second,
		MaxIdemponentCallAttempts: 1, // a retried Fetch would submit twice, and retries hide errors
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		DisablePathNormalizing:    true, // the path form carries percent-encoded values that must stay encoded
	}
	if t.isTLS {
		// The host name of the URL, not the dialled IP, is what the
		// certificate names.
		hc.TLSConfig = &tls.Config{ServerName: hostOnly(t.host), MinVersion: tls.VersionTLS12}
	}
	if s.Dial != nil {
		hc.Dial = s.Dial
	}
	c := &client{hc: hc, host: t.host, form: s.Form, timeout: s.Timeout}
	if s.Format != FormatXML {
		c.format = "&ResponseFormat=" + string(s.Format)
	}
	return c
}

func hostOnly(hostport string) string {
	for i := len(hostport) - 1; i >= 0; i-- {
		switch hostport[i] {
		case ':':
			h := hostport[:i]
			if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
				return h[1 : len(h)-1]
			}
			return h
		case ']':
			return hostport[1:i]
		}
	}
	return hostport
}

// conn is one worker's reusable request state. It is not safe for
// concurrent use.
type conn struct {
	c    *client
	req  fasthttp.Request
	resp fasthttp.Response
	uri  []byte
}

func (c *client) conn() *conn { return &conn{c: c} }

// exchange sends the ACI request whose parameters are query (encoded,
// "action=X&P=V...", ResponseFormat appended by the client) and parses
// the reply into r. It returns the time the request took and a failure
// for anything but a 200 reply that parses with <response>SUCCESS.
func (k *conn) exchange(query []byte, r *reply) (time.Duration, *failure) {
	c := k.c
	req, resp := &k.req, &k.resp
	req.Reset()
	resp.Reset()
	req.URI().DisablePathNormalizing = true
	req.Header.SetHost(c.host)
	switch c.form {
	case FormPath, FormQuery:
		k.uri = append(k.uri[:0], '/')
		if c.form == FormQuery {
			k.uri = append(k.uri, '?')
		}
		k.uri = append(k.uri, query...)
		k.uri = append(k.uri, c.format...)
		req.SetRequestURIBytes(k.uri)
	case FormPost:
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI("/")
		req.Header.SetContentType("text/plain; charset=UTF-8")
		body := req.BodyWriter()
		_, _ = body.Write(query) // a bytebuffer: cannot fail
		_, _ = body.Write([]byte(c.format))
	}
	start := time.Now()
	err := c.hc.DoDeadline(req, resp, start.Add(c.timeout))
	took := time.Since(start)
	if err != nil {
		return took, transportFailure(err)
	}
	if code := resp.StatusCode(); code != fasthttp.StatusOK {
		return took, &failure{class: classHTTP, key: strconv.Itoa(code), detail: "HTTP " + strconv.Itoa(code) + " " + clip(string(resp.Body()), 200)}
	}
	if err := aci.DecodeReply(resp.Body(), r); err != nil {
		return took, &failure{class: classProtocol, key: "malformed", detail: err.Error() + ": " + clip(string(resp.Body()), 200)}
	}
	switch r.Response {
	case aci.ResponseSuccess:
		return took, nil
	case aci.ResponseError:
		code := r.ErrorCode
		if code == "" {
			code = "UNKNOWN"
		}
		detail := r.ErrorText()
		if detail == "" {
			detail = clip(string(resp.Body()), 300)
		}
		return took, &failure{class: classACI, key: code, detail: detail}
	default:
		return took, &failure{class: classProtocol, key: "response", detail: "<response> is neither SUCCESS nor ERROR: " + clip(string(resp.Body()), 200)}
	}
}

// appendParams appends &name=value for each parameter.
func appendParams(dst []byte, ps []param) []byte {
	for _, p := range ps {
		dst = append(dst, '&')
		dst = aci.AppendQueryEscape(dst, p.name)
		dst = append(dst, '=')
		dst = aci.AppendQueryEscape(dst, p.value)
	}
	return dst
}
