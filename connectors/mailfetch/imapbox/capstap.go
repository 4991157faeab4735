package imapbox

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
)

// capsTap watches the connection while the connector logs in, to learn
// whether the server sent its capabilities with the tagged OK of LOGIN or
// AUTHENTICATE ("T1 OK [CAPABILITY ...] Logged in", as Dovecot does; RFC
// 3501 and 9051 allow it). go-imap records them then, before the command
// completes; otherwise it forgets the capabilities of before the log in
// only after the command completed, so that what it says meanwhile may be
// stale, and the connector asks with CAPABILITY as before. The tap reads
// nothing itself: it looks at what go-imap reads, and stops looking at the
// first tagged reply to the command it was armed for. go-imap reads the
// plain text, so the tap sits above TLS: on a STARTTLS connection, which
// go-imap upgrades itself, there is no tap and CAPABILITY is always sent.
type capsTap struct {
	net.Conn
	watching atomic.Bool // armed, not yet decided

	mu      sync.Mutex
	tag     []byte // of the command armed for (from its first write)
	line    []byte // the first line of the server's response being read
	skip    int64  // bytes of a literal still to pass over
	inResp  bool   // within a response continued after a literal
	decided bool
	carried bool // the tagged OK carried [CAPABILITY ...]
}

// tapLine bounds the line kept: longer first lines (none during a log in)
// stop the watch, undecided.
const tapLine = 4096

var literalEnd = regexp.MustCompile(`\{(\d+)\+?\}\r\n$`)

// arm starts watching for the reply to the next command written.
func (t *capsTap) arm() {
	t.mu.Lock()
	t.tag, t.line, t.skip, t.inResp, t.decided, t.carried = nil, t.line[:0], 0, false, false, false
	t.mu.Unlock()
	t.watching.Store(true)
}

// disarm stops watching; result reports whether the reply was seen and
// carried the capabilities.
func (t *capsTap) result() bool {
	t.watching.Store(false)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.decided && t.carried
}

func (t *capsTap) Write(p []byte) (int, error) {
	if t.watching.Load() {
		t.mu.Lock()
		if t.tag == nil {
			if i := bytes.IndexByte(p, ' '); i > 0 {
				t.tag = bytes.Clone(p[:i])
			} else {
				t.decided = true // not a command line: give up
			}
		}
		t.mu.Unlock()
	}
	return t.Conn.Write(p)
}

func (t *capsTap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 && t.watching.Load() {
		t.mu.Lock()
		t.scan(p[:n])
		t.mu.Unlock()
	}
	return n, err
}

// scan follows the responses in b (a literal's bytes are passed over).
func (t *capsTap) scan(b []byte) {
	for len(b) > 0 && !t.decided {
		if t.skip > 0 {
			k := min(int64(len(b)), t.skip)
			t.skip -= k
			b = b[k:]
			continue
		}
		i := bytes.IndexByte(b, '\n')
		seg := b
		if i >= 0 {
			seg = b[:i+1]
		}
		b = b[len(seg):]
		if !t.inResp {
			if len(t.line)+len(seg) > tapLine {
				t.decided = true
				return
			}
			t.line = append(t.line, seg...)
		}
		if i < 0 {
			continue // the line goes on in the next read
		}
		if m := literalEnd.FindSubmatch(seg); m != nil {
			// The response goes on after a literal.
			size, err := strconv.ParseInt(string(m[1]), 10, 64)
			if err != nil {
				t.decided = true
				return
			}
			t.skip, t.inResp = size, true
			continue
		}
		t.judge(t.line)
		t.line, t.inResp = t.line[:0], false
	}
}

// judge looks at a complete response whose first line is l.
func (t *capsTap) judge(l []byte) {
	if t.tag == nil || !bytes.HasPrefix(l, t.tag) || len(l) <= len(t.tag) || l[len(t.tag)] != ' ' {
		return // untagged, a continuation request, or another command's
	}
	t.decided = true
	t.carried = bytes.HasPrefix(l[len(t.tag)+1:], []byte("OK [CAPABILITY "))
}
