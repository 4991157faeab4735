package extract

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
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
// document's page count; when the document information gives neither a
// title nor an author (PDF 2.0 deprecates it) and the PDF has a metadata
// stream, pdfinfo -meta gives the catalog's XMP metadata, which fills the
// fields still empty. Nothing they do can take the server down.

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
	if doc.Title == "" && doc.Author == "" && bytes.Contains(data, []byte("/Metadata")) {
		// No document information (PDF 2.0 deprecates it): the XMP
		// metadata of the catalog, if any (a metadata stream's dictionary
		// says /Type /Metadata, also when the catalog is compressed).
		e.pdfXMP(x, data, doc)
	}
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

// xmpMaxBytes bounds the XMP packet read (its metadata comes first; a
// packet may hold thumbnails and an editing history after it).
const xmpMaxBytes = 1 << 20

// pdfXMP fills the fields of doc still empty from the XMP metadata of
// the PDF's catalog, which pdfinfo -meta prints (run under the limits
// pdftotext runs under). A PDF without any, or that pdfinfo cannot read,
// keeps its fields.
func (e *Extractor) pdfXMP(x *extraction, data []byte, doc *Document) {
	if e.pdfinfo == "" || x.ctx.Err() != nil {
		return
	}
	cmd := popplerCommand(x.ctx, data, e.pdfinfo, "-meta", "-")
	var out bytes.Buffer
	cmd.Stdout = &limitedBuffer{b: &out, max: xmpMaxBytes}
	if err := cmd.Start(); err != nil {
		return
	}
	if err := setLimits(cmd.Process.Pid, uint64(x.limits.MaxMemoryBytes)+pdfStartup, x.limits.Timeout); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return
	}
	if err := cmd.Wait(); err != nil {
		return
	}
	xmpFields(x, out.Bytes(), doc)
}

// XMP namespaces of the properties read.
const (
	xmpDCNS  = "http://purl.org/dc/elements/1.1/"
	xmpPDFNS = "http://ns.adobe.com/pdf/1.3/"
	xmpNS    = "http://ns.adobe.com/xap/1.0/"
)

// xmpProps maps the XMP properties read to the fields they give (as a
// PDF reader maps them to the document information's: dc:description is
// the subject; pdf:Keywords, else dc:subject's items, the keywords).
var xmpProps = map[xml.Name]string{
	{Space: xmpDCNS, Local: "title"}:       "title",
	{Space: xmpDCNS, Local: "creator"}:     "author",
	{Space: xmpDCNS, Local: "description"}: "subject",
	{Space: xmpDCNS, Local: "subject"}:     "subjects",
	{Space: xmpPDFNS, Local: "Keywords"}:   "keywords",
	{Space: xmpNS, Local: "CreateDate"}:    "created",
	{Space: xmpNS, Local: "ModifyDate"}:    "modified",
}

// xmpFields fills the fields of doc still empty from the XMP packet: a
// property's value is its text, or its items (rdf:li) joined with ", "
// (of a language alternative, the x-default one, else the first); a
// simple property may be an attribute of rdf:Description.
func xmpFields(x *extraction, packet []byte, doc *Document) {
	vals := map[string]string{}
	prop, propDepth, depth := "", 0, 0
	var text strings.Builder
	var items []string
	inItem, isDefault, defaultItem := false, false, ""
	// Its own extraction: a packet is not text, and is read also when
	// the document's text was cut.
	px := &extraction{ctx: x.ctx, limits: x.limits, out: newTextBuilder(0)}
	_ = walkXML(px, &xmlChars{r: bytes.NewReader(packet)}, "XMP metadata", func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			if prop == "" {
				for _, a := range t.Attr {
					if p := xmpProps[a.Name]; p != "" && vals[p] == "" {
						vals[p] = a.Value
					}
				}
				if p := xmpProps[t.Name]; p != "" {
					prop, propDepth = p, depth
					text.Reset()
					items, defaultItem = items[:0], ""
				}
				break
			}
			if t.Name.Local == "li" {
				inItem, isDefault = true, attr(t, "lang") == "x-default"
				items = append(items, "")
			}
		case xml.EndElement:
			if prop != "" && depth == propDepth {
				v := strings.TrimSpace(text.String())
				switch {
				case defaultItem != "":
					v = defaultItem
				case len(items) > 0 && (prop == "title" || prop == "subject"):
					v = items[0]
				case len(items) > 0:
					v = strings.Join(slices.DeleteFunc(items, func(s string) bool { return strings.TrimSpace(s) == "" }), ", ")
				}
				if vals[prop] == "" {
					vals[prop] = v
				}
				prop = ""
			} else if prop != "" && t.Name.Local == "li" {
				if isDefault {
					defaultItem = items[len(items)-1]
				}
				inItem = false
			}
			depth--
		case xml.CharData:
			switch {
			case prop == "":
			case inItem:
				items[len(items)-1] += string(t)
			default:
				text.Write(t)
			}
		}
		return nil
	})
	if vals["keywords"] == "" {
		vals["keywords"] = vals["subjects"]
	}
	for _, f := range []struct {
		field *string
		prop  string
	}{{&doc.Title, "title"}, {&doc.Author, "author"}, {&doc.Subject, "subject"}, {&doc.Keywords, "keywords"}} {
		if *f.field == "" {
			*f.field = vals[f.prop]
		}
	}
	if doc.Created.IsZero() {
		doc.Created = parseTime(vals["created"])
	}
	if doc.Modified.IsZero() {
		doc.Modified = parseTime(vals["modified"])
	}
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
