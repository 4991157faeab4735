package imapbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
)

// gmConn is the second connection that reads Gmail's fetch items
// (X-GM-MSGID, X-GM-THRID, X-GM-LABELS), which go-imap v2 cannot request
// or parse. It speaks the little IMAP this needs: the greeting, STARTTLS,
// CAPABILITY, LOGIN or AUTHENTICATE (with the same SASL mechanisms as the
// main connection), EXAMINE (read-only), UID FETCH and LOGOUT, and reads
// responses as lines and literals, each response at most 16 MiB.
type gmConn struct {
	mu       sync.Mutex
	conn     net.Conn
	br       *bufio.Reader
	tag      int
	caps     map[string]bool
	examined string
	noThrID  bool // the server refused X-GM-THRID (hoodiecrow has none)
	commands atomic.Int64
	timeout  time.Duration
}

// gmData is one message's Gmail data.
type gmData struct {
	msgID, thrID string // hexadecimal
	labels       []string
}

// gmailData fills the Gmail ids and labels of messages of the selected
// folder.
func (b *Box) gmailData(ctx context.Context, msgs []*mailbox.Meta) error {
	if b.gm == nil {
		gm, err := b.dialGM(ctx)
		if err != nil {
			return err
		}
		b.gm = gm
	}
	var set imap.UIDSet
	for _, m := range msgs {
		set.AddNum(imap.UID(m.UID))
	}
	var data map[uint32]gmData
	err := b.run(ctx, func() (err error) {
		data, err = b.gm.fetch(b.selName, set.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("imap: Gmail data in %q: %w", b.selName, err)
	}
	for _, m := range msgs {
		d, ok := data[m.UID]
		if !ok {
			continue
		}
		m.GmailID, m.GmailThreadID = d.msgID, d.thrID
		m.Labels = d.labels
		if m.Labels == nil {
			m.Labels = []string{}
		}
	}
	return nil
}

func (b *Box) dialGM(ctx context.Context) (*gmConn, error) {
	tok, err := b.accessToken() // before connecting (Config.Timeout)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	dial := b.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(dctx, "tcp", b.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("imap: connect to %s for Gmail data: %w", b.cfg.Addr, err)
	}
	g := &gmConn{conn: conn, timeout: b.cfg.Timeout}
	ok := false
	defer func() {
		if !ok {
			_ = conn.Close()
		}
	}()
	_ = conn.SetDeadline(deadline(dctx))
	if b.cfg.Security == SecurityTLS || b.cfg.Security == "" {
		t := tls.Client(conn, b.tlsConfig())
		if err := t.HandshakeContext(dctx); err != nil {
			return nil, fmt.Errorf("imap: TLS with %s: %w", b.cfg.Addr, err)
		}
		g.conn = t
	}
	g.br = bufio.NewReader(g.conn)
	greeting, err := g.readResponse()
	if err != nil {
		return nil, fmt.Errorf("imap: greeting of %s: %w", b.cfg.Addr, err)
	}
	if len(greeting) < 2 || greeting[0].s != "*" || !strings.EqualFold(greeting[1].s, "OK") {
		return nil, fmt.Errorf("imap: %s greeted with %s", b.cfg.Addr, render(greeting))
	}
	if b.cfg.Security == SecurityStartTLS {
		if _, err := g.command("STARTTLS"); err != nil {
			return nil, fmt.Errorf("imap: STARTTLS with %s: %w", b.cfg.Addr, err)
		}
		t := tls.Client(g.conn, b.tlsConfig())
		if err := t.HandshakeContext(dctx); err != nil {
			return nil, fmt.Errorf("imap: TLS with %s: %w", b.cfg.Addr, err)
		}
		g.conn = t
		g.br = bufio.NewReader(t)
	}
	if err := g.capability(); err != nil {
		return nil, err
	}
	if err := g.login(b, tok); err != nil {
		return nil, err
	}
	_ = g.conn.SetDeadline(time.Time{})
	ok = true
	return g, nil
}

func (g *gmConn) capability() error {
	resp, err := g.command("CAPABILITY")
	if err != nil {
		return fmt.Errorf("imap: CAPABILITY: %w", err)
	}
	g.caps = map[string]bool{}
	for _, r := range resp {
		if len(r) > 2 && r[0].s == "*" && strings.EqualFold(r[1].s, "CAPABILITY") {
			for _, t := range r[2:] {
				g.caps[strings.ToUpper(t.s)] = true
			}
		}
	}
	return nil
}

// login authenticates as the main connection did; tok is
// Box.accessToken's.
func (g *gmConn) login(b *Box, tok *oauth2.Token) error {
	var client sasl.Client
	sent := &credentials{password: b.cfg.Password}
	switch auth := b.cfg.Auth; {
	case auth == AuthLogin || (auth == AuthPassword || auth == "") && b.cfg.Tokens == nil && !g.caps["AUTH=PLAIN"]:
		if strings.ContainsAny(b.cfg.Username+b.cfg.Password, "\r\n\x00") {
			return fmt.Errorf("%w: LOGIN cannot send a user name or password with line breaks", mailbox.ErrAuth)
		}
		if _, err := g.command("LOGIN " + astring(b.cfg.Username) + " " + astring(b.cfg.Password)); err != nil {
			return fmt.Errorf("%w: LOGIN as %s refused: %s", mailbox.ErrAuth, b.cfg.Username, sent.scrub(err.Error()))
		}
		return nil
	case auth == AuthPlain || auth == AuthPassword || auth == "" && b.cfg.Tokens == nil:
		client = sasl.NewPlainClient("", b.cfg.Username, b.cfg.Password)
	default:
		if tok == nil {
			return fmt.Errorf("imap: unknown authentication %q", auth)
		}
		sent.token = tok.AccessToken
		if auth == AuthOAuthBearer {
			p, _ := strconv.Atoi(b.port)
			client = &oauthBearer{inner: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: b.cfg.Username, Token: tok.AccessToken, Host: b.host, Port: p})}
		} else {
			client = &xoauth2{user: b.cfg.Username, token: tok.AccessToken}
		}
	}
	client = sent.recording(client)
	mech, ir, err := client.Start()
	if err != nil {
		return err
	}
	g.tag++
	tag := "G" + strconv.Itoa(g.tag)
	line := tag + " AUTHENTICATE " + mech
	if ir != nil && g.caps["SASL-IR"] {
		line += " " + saslEncode(ir)
		ir = nil
	}
	g.commands.Add(1)
	if err := g.write(line); err != nil {
		return err
	}
	for {
		r, err := g.readResponse()
		if err != nil {
			return err
		}
		switch {
		case len(r) > 0 && r[0].s == "+":
			var resp []byte
			if ir != nil {
				resp, ir = ir, nil
			} else {
				ch := ""
				if len(r) > 1 {
					ch = r[1].s
				}
				challenge, _ := base64.StdEncoding.DecodeString(ch)
				if resp, err = client.Next(challenge); err != nil {
					return err
				}
			}
			if err := g.write(saslEncode(resp)); err != nil {
				return err
			}
		case len(r) > 1 && r[0].s == tag:
			if strings.EqualFold(r[1].s, "OK") {
				return nil
			}
			return fmt.Errorf("%w: %s as %s refused: %s", mailbox.ErrAuth, mech, b.cfg.Username, sent.scrub(render(r[1:])))
		}
	}
}

func saslEncode(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// fetch reads the Gmail data of a UID set of folder.
func (g *gmConn) fetch(folder, set string) (map[uint32]gmData, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.examined != folder {
		if _, err := g.command("EXAMINE " + astring(encodeUTF7(folder))); err != nil {
			return nil, fmt.Errorf("EXAMINE: %w", err)
		}
		g.examined = folder
	}
	items := "UID X-GM-MSGID X-GM-THRID X-GM-LABELS"
	if g.noThrID {
		items = "UID X-GM-MSGID X-GM-LABELS"
	}
	resp, err := g.command("UID FETCH " + set + " (" + items + ")")
	var bad *commandError
	if errors.As(err, &bad) && bad.status == "BAD" && !g.noThrID {
		g.noThrID = true
		resp, err = g.command("UID FETCH " + set + " (UID X-GM-MSGID X-GM-LABELS)")
	}
	if err != nil {
		return nil, fmt.Errorf("UID FETCH: %w", err)
	}
	out := map[uint32]gmData{}
	for _, r := range resp {
		if len(r) < 4 || r[0].s != "*" || !strings.EqualFold(r[2].s, "FETCH") || r[3].kind != tokList {
			continue
		}
		var uid uint32
		var d gmData
		kv := r[3].list
		for i := 0; i+1 < len(kv); i += 2 {
			name, val := strings.ToUpper(kv[i].s), kv[i+1]
			switch name {
			case "UID":
				n, _ := strconv.ParseUint(val.s, 10, 32)
				uid = uint32(n)
			case "X-GM-MSGID":
				d.msgID = hexID(val.s)
			case "X-GM-THRID":
				d.thrID = hexID(val.s)
			case "X-GM-LABELS":
				for _, l := range val.list {
					if name := gmailLabel(l.s); name != "" {
						d.labels = append(d.labels, name)
					}
				}
			}
		}
		if uid != 0 {
			out[uid] = d
		}
	}
	return out, nil
}

// hexID writes Gmail's decimal id as the Gmail API writes it.
func hexID(dec string) string {
	n, err := strconv.ParseUint(dec, 10, 64)
	if err != nil {
		return ""
	}
	return strconv.FormatUint(n, 16)
}

// gmailLabel names a label as the Gmail API does: the system labels by
// their ids (\Inbox is INBOX), the others by name (decoded from modified
// UTF-7). \All (All Mail) is no label: "".
func gmailLabel(l string) string {
	switch strings.ToLower(l) {
	case `\all`:
		return ""
	case `\inbox`:
		return "INBOX"
	case `\sent`:
		return "SENT"
	case `\draft`, `\drafts`:
		return "DRAFT"
	case `\important`:
		return "IMPORTANT"
	case `\starred`:
		return "STARRED"
	case `\spam`, `\junk`:
		return "SPAM"
	case `\trash`:
		return "TRASH"
	}
	return decodeUTF7(l)
}

func (g *gmConn) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return
	}
	_ = g.conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = g.commandLocked("LOGOUT")
	_ = g.conn.Close()
	g.conn = nil
}

// commandError is a NO or BAD answer.
type commandError struct {
	status, text string
}

func (e *commandError) Error() string { return e.status + " " + e.text }

// command sends a command and returns the untagged responses until its
// tagged OK.
func (g *gmConn) command(cmd string) ([][]token, error) {
	return g.commandLocked(cmd)
}

func (g *gmConn) commandLocked(cmd string) ([][]token, error) {
	if g.conn == nil {
		return nil, net.ErrClosed
	}
	g.tag++
	tag := "G" + strconv.Itoa(g.tag)
	g.commands.Add(1)
	if g.timeout > 0 {
		_ = g.conn.SetDeadline(time.Now().Add(g.timeout))
		defer func() { _ = g.conn.SetDeadline(time.Time{}) }()
	}
	if err := g.write(tag + " " + cmd); err != nil {
		return nil, err
	}
	var untagged [][]token
	for {
		r, err := g.readResponse()
		if err != nil {
			return nil, err
		}
		if len(r) == 0 {
			continue
		}
		if r[0].s == tag {
			status := ""
			if len(r) > 1 {
				status = strings.ToUpper(r[1].s)
			}
			if status == "OK" {
				return untagged, nil
			}
			return nil, &commandError{status: status, text: render(r[2:])}
		}
		if r[0].s == "*" {
			untagged = append(untagged, r)
		}
	}
}

func (g *gmConn) write(line string) error {
	_, err := io.WriteString(g.conn, line+"\r\n")
	return err
}

// token is one element of a response: an atom (or number), a string
// (quoted or literal), NIL, or a parenthesised list.
type token struct {
	kind int
	s    string
	list []token
}

const (
	tokAtom = iota
	tokString
	tokList
)

// maxResponse bounds one response of the side connection.
const maxResponse = 16 << 20

// readResponse reads one response: a line, with the literals it
// announces, tokenised.
func (g *gmConn) readResponse() ([]token, error) {
	var raw strings.Builder
	var lits []string
	for {
		line, err := g.br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		raw.WriteString(line)
		if raw.Len() > maxResponse {
			return nil, errors.New("imap: response too large")
		}
		n, ok := literalSize(line)
		if !ok {
			break
		}
		if n > maxResponse {
			return nil, errors.New("imap: literal too large")
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(g.br, buf); err != nil {
			return nil, err
		}
		lits = append(lits, string(buf))
		raw.WriteString("\x00") // where the literal goes
	}
	return tokenize(raw.String(), lits), nil
}

// literalSize reads a "{n}" (or "{n+}") at the end of a line.
func literalSize(line string) (int, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// maxNesting bounds the lists within lists of a tokenised response
// (Gmail's fetch items are three deep): a server's millions of
// parentheses would cost a gigabyte of lists, and render's recursion a
// stack overflow, which ends the process.
const maxNesting = 32

// tokenize splits a response whose literals were replaced: "{n}\x00"
// stands for the next literal of lits. Parentheses deeper than
// maxNesting are dropped (their contents join the deepest list).
func tokenize(s string, lits []string) []token {
	var stack [][]token
	var cur []token
	dropped := 0 // parentheses open beyond maxNesting
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == '(' && len(stack) >= maxNesting:
			dropped++
			i++
		case c == ')' && dropped > 0:
			dropped--
			i++
		case c == '(':
			stack = append(stack, cur)
			cur = nil
			i++
		case c == ')':
			if len(stack) == 0 {
				i++
				continue
			}
			l := token{kind: tokList, list: cur}
			cur = append(stack[len(stack)-1], l)
			stack = stack[:len(stack)-1]
			i++
		case c == '"':
			var b strings.Builder
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
				i++
			}
			i++
			cur = append(cur, token{kind: tokString, s: b.String()})
		case c == '{':
			end := strings.IndexByte(s[i:], '\x00')
			if end < 0 || len(lits) == 0 {
				i = len(s)
				continue
			}
			cur = append(cur, token{kind: tokString, s: lits[0]})
			lits = lits[1:]
			i += end + 1
		default:
			j := i
			depth := 0 // brackets of a response code or section: "[CAPABILITY ...]"
			for j < len(s) {
				cj := s[j]
				if cj == '[' {
					depth++
				} else if cj == ']' {
					depth--
				} else if depth <= 0 && (cj == ' ' || cj == '(' || cj == ')') {
					break
				} else if depth > 0 && cj == ' ' {
					break
				}
				j++
			}
			if j == i {
				j++
			}
			cur = append(cur, token{kind: tokAtom, s: strings.Trim(s[i:j], "[]")})
			i = j
		}
	}
	for len(stack) > 0 {
		l := token{kind: tokList, list: cur}
		cur = append(stack[len(stack)-1], l)
		stack = stack[:len(stack)-1]
	}
	return cur
}

func render(toks []token) string {
	var parts []string
	for _, t := range toks {
		if t.kind == tokList {
			parts = append(parts, "("+render(t.list)+")")
			continue
		}
		parts = append(parts, t.s)
	}
	s := strings.Join(parts, " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// astring writes s as an IMAP quoted string (callers keep line breaks
// out).
func astring(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// encodeUTF7 writes a mailbox name in IMAP's modified UTF-7 (RFC 3501
// 5.1.3).
func encodeUTF7(s string) string {
	var b strings.Builder
	var pending []rune
	flush := func() {
		if len(pending) == 0 {
			return
		}
		u := utf16.Encode(pending)
		raw := make([]byte, 0, 2*len(u))
		for _, c := range u {
			raw = append(raw, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(raw), "/", ","))
		b.WriteByte('-')
		pending = nil
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			pending = append(pending, r)
		}
	}
	flush()
	return b.String()
}

// decodeUTF7 reads modified UTF-7; a malformed name is returned as is.
func decodeUTF7(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			b.WriteByte(s[i])
			continue
		}
		end := strings.IndexByte(s[i:], '-')
		if end < 0 {
			return s
		}
		enc := s[i+1 : i+end]
		i += end
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(enc, ",", "/"))
		if err != nil || len(raw)%2 != 0 {
			return s
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		b.WriteString(string(utf16.Decode(u)))
	}
	return b.String()
}
