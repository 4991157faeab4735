package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PDF text comes from pdftotext (Debian package poppler-utils), run as a
// separate process per document: bench/RESULTS.md ("Text extraction")
// has the comparison behind that choice. The process gets the document
// on its standard input, and writes the text (pages separated by form
// feeds) and the document information (-htmlmeta) on its standard output.
// It runs with an address-space limit (RLIMIT_AS = Limits.MaxMemoryBytes),
// a CPU-time limit and Limits.Timeout, is killed when any of them is
// reached or its output passes Limits.MaxTextBytes, and reads at most
// Limits.MaxPages pages, plus one that tells whether there are more (-l).
// When the text is cut, pdfinfo (same package, same limits) gives the
// document's page count. Nothing they do can take the server down.

// lookPDFToText resolves the pdftotext program.
func lookPDFToText(name string) (string, error) {
	if name == "" {
		name = "pdftotext"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (install Debian's poppler-utils): %v", ErrUnavailable, name, err)
	}
	return p, nil
}

// pdfStartup is the address space pdftotext needs before it reads a byte
// of the document (its shared libraries); it is added to MaxMemoryBytes
// so that the limit is about the document.
const pdfStartup = 64 << 20

func (e *Extractor) pdf(x *extraction, data []byte, doc *Document) error {
	if e.pdftotext == "" {
		return e.pdfErr
	}
	if bytes.HasPrefix(data, []byte("%PDF-")) && len(data) < 64 {
		return malformed("truncated: %d bytes", len(data))
	}
	ctx := x.ctx
	// One page more than MaxPages: its presence says the document is cut.
	cmd := popplerCommand(ctx, data, e.pdftotext, "-enc", "UTF-8", "-htmlmeta", "-q",
		"-l", strconv.Itoa(x.limits.MaxPages+1), "-", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 4096}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// Limits take effect before pdftotext has opened the document: it
	// reads its standard input only once its libraries are loaded.
	limitErr := setLimits(cmd.Process.Pid, uint64(x.limits.MaxMemoryBytes)+pdfStartup, x.limits.Timeout)
	if limitErr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("%w: cannot limit pdftotext: %v", ErrUnavailable, limitErr)
	}
	// Read at most MaxTextBytes of text (plus room for the HTML head).
	max := int64(x.limits.MaxTextBytes) + 64<<10
	out, rerr := io.ReadAll(io.LimitReader(stdout, max+1))
	truncated := int64(len(out)) > max
	if truncated {
		out = out[:max]
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case truncated:
		doc.Truncated = true
	case rerr != nil:
		return malformed("reading pdftotext: %v", rerr)
	case werr != nil:
		return pdfFailure(werr, stderr.String(), x.limits)
	}
	parsePDFToText(out, doc, x.out, x.limits.MaxPages)
	if doc.Truncated {
		// The pages read are not the document's: ask pdfinfo.
		if n := e.pdfPageCount(x, data); n > doc.Pages {
			doc.Pages = n
		}
	}
	return nil
}

// popplerCommand is a poppler-utils program reading data on its standard
// input: in a process group of its own, killed with the server and when
// ctx ends, in the C.UTF-8 locale. Its limits are set once it has started
// (setLimits).
func popplerCommand(ctx context.Context, data []byte, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = time.Second
	cmd.Env = []string{"LC_ALL=C.UTF-8"}
	return cmd
}

// lookPDFInfo returns the pdfinfo of pdftotext's poppler-utils (beside
// it, else in PATH), or "".
func lookPDFInfo(pdftotext string) string {
	if pdftotext == "" {
		return ""
	}
	if p, err := exec.LookPath(filepath.Join(filepath.Dir(pdftotext), "pdfinfo")); err == nil {
		return p
	}
	p, _ := exec.LookPath("pdfinfo")
	return p
}

// pdfPageCount returns the number of pages pdfinfo finds in a PDF (run
// under the limits pdftotext runs under), or 0 when it cannot tell.
func (e *Extractor) pdfPageCount(x *extraction, data []byte) int {
	if e.pdfinfo == "" || x.ctx.Err() != nil {
		return 0
	}
	cmd := popplerCommand(x.ctx, data, e.pdfinfo, "-")
	var out bytes.Buffer
	cmd.Stdout = &limitedBuffer{b: &out, max: 64 << 10}
	if err := cmd.Start(); err != nil {
		return 0
	}
	if err := setLimits(cmd.Process.Pid, uint64(x.limits.MaxMemoryBytes)+pdfStartup, x.limits.Timeout); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0
	}
	if err := cmd.Wait(); err != nil {
		return 0
	}
	// The last "Pages:" line: the document's title and other metadata,
	// printed before it, may hold line breaks.
	n := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "Pages:"); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return max(n, 0)
}

// setLimits sets the address-space and CPU-time limits of process pid.
func setLimits(pid int, as uint64, timeout time.Duration) error {
	if err := unix.Prlimit(pid, unix.RLIMIT_AS, &unix.Rlimit{Cur: as, Max: as}, nil); err != nil {
		return err
	}
	cpu := uint64(timeout/time.Second) + 1
	return unix.Prlimit(pid, unix.RLIMIT_CPU, &unix.Rlimit{Cur: cpu, Max: cpu + 1}, nil)
}

// pdfFailure explains pdftotext's exit.
func pdfFailure(err error, stderr string, l Limits) error {
	msg := strings.TrimSpace(stderr)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			switch ws.Signal() {
			case syscall.SIGXCPU:
				return fmt.Errorf("%w: pdftotext used its CPU time limit", ErrTimeout)
			case syscall.SIGKILL, syscall.SIGSEGV, syscall.SIGABRT, syscall.SIGBUS:
				// Out of address space shows as an abort (std::bad_alloc) or
				// a crash.
				if strings.Contains(msg, "bad_alloc") || strings.Contains(msg, "memory") || ws.Signal() == syscall.SIGABRT {
					return fmt.Errorf("%w: pdftotext ran out of its %d bytes", ErrLimit, l.MaxMemoryBytes)
				}
				return malformed("pdftotext died of %s", ws.Signal())
			}
		}
		switch ee.ExitCode() {
		case 1, 2:
			if strings.Contains(msg, "Incorrect password") || strings.Contains(msg, "ncrypt") {
				return ErrEncrypted
			}
			return malformed("%s", firstLine(msg, "pdftotext could not read it"))
		case 3:
			return malformed("pdftotext: permission to extract text is denied by the document")
		}
	}
	return malformed("pdftotext: %v: %s", err, firstLine(msg, ""))
}

func firstLine(s, def string) string {
	if s == "" {
		return def
	}
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// parsePDFToText reads pdftotext -htmlmeta output: <title>, <meta
// name=... content=...> lines, then the text in <pre>, pages ended by form
// feeds. Pages beyond maxPages are dropped, and the document marked
// truncated.
func parsePDFToText(out []byte, doc *Document, tb *textBuilder, maxPages int) {
	s := string(out)
	head, body, found := strings.Cut(s, "<pre>")
	if !found {
		head, body = "", s
	}
	if t, ok := between(head, "<title>", "</title>"); ok {
		doc.Title = html.UnescapeString(t)
	}
	// A value is written as it is, line breaks included (escaped, it
	// holds no quote): each <meta> is read whole, not line by line.
	for rest := head; ; {
		i := strings.Index(rest, `<meta name="`)
		if i < 0 {
			break
		}
		rest = rest[i:]
		end := strings.Index(rest, `"/>`)
		if end < 0 {
			break
		}
		tag := rest[:end+len(`"/>`)]
		rest = rest[len(tag):]
		name, _ := between(tag, `<meta name="`, `"`)
		content, _ := between(tag, `content="`, `"/>`)
		content = html.UnescapeString(content)
		switch name {
		case "Author":
			doc.Author = content
		case "Subject":
			doc.Subject = content
		case "Keywords":
			doc.Keywords = content
		case "CreationDate":
			doc.Created = parseTime(content)
		case "ModDate":
			doc.Modified = parseTime(content)
		}
	}
	body, _, _ = strings.Cut(body, "</pre>")
	body = strings.TrimPrefix(body, "\n")
	doc.Pages = strings.Count(body, "\f")
	if doc.Pages > maxPages {
		end := 0
		for range maxPages {
			end += strings.IndexByte(body[end:], '\f') + 1
		}
		body, doc.Pages, doc.Truncated = body[:end], maxPages, true
	}
	text := html.UnescapeString(body)
	text = strings.ReplaceAll(text, "\f", "\n\n")
	tb.WriteString(text)
}

func between(s, open, close string) (string, bool) {
	i := strings.Index(s, open)
	if i < 0 {
		return "", false
	}
	s = s[i+len(open):]
	j := strings.Index(s, close)
	if j < 0 {
		return "", false
	}
	return s[:j], true
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
