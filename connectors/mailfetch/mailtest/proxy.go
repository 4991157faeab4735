package mailtest

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// Proxy passes IMAP connections through to a server and records the
// commands clients send (their names, upper case, in order).
type Proxy struct {
	Addr string

	rewrite  func(line string) string
	ln       net.Listener
	to       string
	mu       sync.Mutex
	commands []string
	conns    int
	wg       sync.WaitGroup
}

// StartProxy starts a proxy on 127.0.0.1 to addr, stopped at the test's
// end. rewrite, when not nil, may change each line the server sends
// (literals included: the tests' servers send none before the log in is
// over).
func StartProxy(t testing.TB, addr string, rewrite func(line string) string) *Proxy {
	t.Helper()
	p, err := NewProxy(addr, rewrite)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewProxy starts a proxy on 127.0.0.1 to addr, as StartProxy does, for
// programs that are not tests (the mail benchmark); Close stops it.
func NewProxy(addr string, rewrite func(line string) string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, to: addr, rewrite: rewrite}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
			p.wg.Add(1)
			go p.serve(c)
		}
	}()
	return p, nil
}

// Close stops accepting connections and waits for those open to end.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.wg.Wait()
}

// Redirect sends the connections made from now on to addr: to clients,
// the server at the proxy's address was replaced by another.
func (p *Proxy) Redirect(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.to = addr
}

// Commands returns the names of the commands sent so far.
func (p *Proxy) Commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.commands...)
}

// Connections returns how many connections were accepted.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	p.mu.Lock()
	to := p.to
	p.mu.Unlock()
	s, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(s)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				if p.rewrite != nil {
					line = p.rewrite(line)
				}
				if _, werr := c.Write([]byte(line)); werr != nil {
					return
				}
			}
			if err != nil {
				_ = c.Close()
				return
			}
		}
	}()
	r := bufio.NewReader(c)
	first := true // of a command, not a continuation's answer
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			if f := strings.Fields(line); first && len(f) >= 2 {
				p.mu.Lock()
				p.commands = append(p.commands, strings.ToUpper(f[1]))
				p.mu.Unlock()
			}
			// An AUTHENTICATE without its initial response is answered
			// on the next line.
			f := strings.Fields(line)
			first = !(first && len(f) == 3 && strings.EqualFold(f[1], "AUTHENTICATE"))
			if _, werr := s.Write([]byte(line)); werr != nil {
				return
			}
		}
		if err != nil {
			_ = s.Close()
			<-done
			return
		}
	}
}
