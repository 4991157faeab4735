package httpd

import (
	"context"
	"encoding/base64"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// viewTimeout bounds a View: it fetches from the repository while the
// client waits, and fasthttp cannot tell us when the client goes away.
const viewTimeout = 2 * time.Minute

// view serves /action=View&Identifier=...: the item's bytes (NoACI=true,
// the default), or an ACI reply with its content in base64 (NoACI=false).
// Range=bytes=a-b asks for part of the content (HTTP 206 with the raw form).
func (s *Server) view(ctx context.Context, v fetch.Viewer, req *aci.Request) (*result, error) {
	id, err := req.Require("Identifier")
	if err != nil {
		return nil, err
	}
	noACI, err := req.Bool("NoACI", true)
	if err != nil {
		return nil, err
	}
	withMeta, err := req.Bool("WithMetadata", true)
	if err != nil {
		return nil, err
	}
	rng, _ := req.Params.Get("Range")
	ctx, cancel := context.WithTimeout(ctx, viewTimeout)
	defer cancel()
	item, err := v.View(ctx, id, req.ActionParams())
	if err != nil {
		return nil, err
	}
	content, status := item.Content, 200
	var contentRange string
	if strings.TrimSpace(rng) != "" {
		lo, hi, err := parseRange(rng, len(content))
		if err != nil {
			return nil, err
		}
		content, status = content[lo:hi+1], 206
		contentRange = fmt.Sprintf("bytes %d-%d/%d", lo, hi, len(item.Content))
	}
	if noACI {
		res := &result{raw: content, rawType: item.MimeType, status: status}
		if res.rawType == "" {
			res.rawType = "application/octet-stream"
		}
		if res.raw == nil {
			res.raw = []byte{}
		}
		// The document is a remote site's, mailbox's or service's:
		// opened in a browser on this origin, its scripts could send
		// actions as a same-origin page. It is sandboxed (an opaque
		// origin, no scripts), except a PDF, which Chrome's viewer
		// does not show sandboxed and whose scripts do not run in the
		// page's origin.
		res.headers = append(res.headers, [2]string{"X-Content-Type-Options", "nosniff"})
		if mt, _, _ := strings.Cut(res.rawType, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/pdf") {
			res.headers = append(res.headers, [2]string{"Content-Security-Policy", "sandbox"})
		}
		if contentRange != "" {
			res.headers = append(res.headers, [2]string{"Content-Range", contentRange})
		}
		if item.FileName != "" {
			res.headers = append(res.headers, [2]string{"Content-Disposition", contentDisposition(item.FileName)})
		}
		return res, nil
	}
	var data []aci.Node
	if withMeta {
		if item.Reference != "" {
			data = append(data, aci.TextNode("reference", item.Reference))
		}
		if len(item.Metadata) > 0 {
			meta := make([]aci.Node, len(item.Metadata))
			for i, m := range item.Metadata {
				meta[i] = aci.Node{Name: "field", List: true, Attrs: []aci.Attr{{Name: "name", Value: m.Name}}, Text: m.Value}
			}
			data = append(data, aci.Container("metadata", meta...))
		}
	}
	data = append(data,
		aci.TextNode("mime-type", item.MimeType),
		aci.TextNode("filename", item.FileName),
		aci.TextNode("content", base64.StdEncoding.EncodeToString(content)))
	if contentRange != "" {
		data = append(data, aci.TextNode("range", contentRange))
	}
	return &result{data: data}, nil
}

// parseRange reads one HTTP byte range ("bytes=a-b", "bytes=a-",
// "bytes=-n") against a content of size n and returns inclusive bounds.
func parseRange(v string, n int) (int, int, error) {
	bad := func(why string) (int, int, error) { return 0, 0, messages.Invalid("Range", v, why) }
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return bad("use one range of the form bytes=first-last")
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return bad("use one range of the form bytes=first-last")
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" { // suffix: last b bytes
		k, err := strconv.Atoi(b)
		if err != nil || k <= 0 {
			return bad("the suffix length must be a positive number")
		}
		if n == 0 {
			return bad("the content is empty")
		}
		return max(n-k, 0), n - 1, nil
	}
	lo, err := strconv.Atoi(a)
	if err != nil || lo < 0 {
		return bad("the first byte must be a number")
	}
	if lo >= n {
		return bad(fmt.Sprintf("the content has %d bytes", n))
	}
	hi := n - 1
	if b != "" {
		if hi, err = strconv.Atoi(b); err != nil || hi < lo {
			return bad("the last byte must be a number not below the first")
		}
		hi = min(hi, n-1)
	}
	return lo, hi, nil
}

// taskList serves /action=TaskList[&MatchName=pattern][&MatchAction=pattern]
// (patterns use * and ?, case-insensitively).
func (s *Server) taskList(_ context.Context, tl fetch.TaskLister, req *aci.Request) (*result, error) {
	matchName := strings.ToLower(req.Params.Value("MatchName"))
	matchAction := strings.ToLower(req.Params.Value("MatchAction"))
	for name, p := range map[string]string{"MatchName": matchName, "MatchAction": matchAction} {
		if _, err := path.Match(p, ""); err != nil {
			return nil, messages.Invalid(name, p, "not a valid pattern")
		}
	}
	tasks, err := tl.TaskList()
	if err != nil {
		return nil, err
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format(aci.QueueTimeLayout)
	}
	var nodes []aci.Node
	for _, t := range tasks {
		if ok, _ := path.Match(matchName, strings.ToLower(t.Name)); matchName != "" && !ok {
			continue
		}
		if ok, _ := path.Match(matchAction, strings.ToLower(t.Action)); matchAction != "" && !ok {
			continue
		}
		nodes = append(nodes, aci.Node{Name: "task", List: true, Children: []aci.Node{
			aci.TextNode("name", t.Name),
			aci.TextNode("action", t.Action),
			aci.TextNode("calls", strconv.FormatUint(t.Calls, 10)),
			aci.TextNode("datastore", t.Datastore),
			aci.TextNode("lastStartTime", stamp(t.LastStart)),
			aci.TextNode("lastFinishTime", stamp(t.LastFinish)),
		}})
	}
	return &result{data: nodes}, nil
}

// contentDisposition is the Content-Disposition of a View of a document
// named name (RFC 6266): inline, with the name as an ASCII quoted-string
// (other characters as '_'), and, when that is not the name, the name in
// UTF-8 as RFC 8187 (5987) spells it, which browsers prefer:
//
//	inline; filename="caf_.pdf"; filename*=UTF-8''caf%C3%A9.pdf
//
// A header value carries no raw non-ASCII bytes: browsers would read them
// as Latin-1 and save caf\u00c3\u00a9.pdf.
func contentDisposition(name string) string {
	var b strings.Builder
	b.WriteString(`inline; filename="`)
	exact := true
	for _, r := range name {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r > '~':
			b.WriteByte('_')
			exact = false
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	if exact {
		return b.String()
	}
	b.WriteString("; filename*=UTF-8''")
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		// attr-char (RFC 8187 3.2.1) as it is; any other byte escaped.
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
