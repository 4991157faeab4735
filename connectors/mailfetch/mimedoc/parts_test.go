package mimedoc

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// partSeeds are messages whose multiparts take every path of the reader:
// CRLF and LF line ends, preamble and epilogue, a delimiter straight after
// a part's header, white space after delimiters, delimiters that are only
// prefixes ("--Bx"), a body ending in part of a delimiter, missing closing
// delimiters (at each level of nesting), malformed part headers, folded
// part header fields, a name with white space before its colon, encodings.
func partSeeds() [][]byte {
	para := strings.Repeat("The quarterly figures are attached. ", 20)
	seeds := [][]byte{
		mailtest.Message{From: "a@b", Subject: "s", Text: "t", HTML: "<p>h</p>",
			Attachments: []mailtest.Attachment{{Name: "a.bin", Data: []byte{1, 2}}}}.Raw(),
		mailtest.Message{From: "a@b", To: "c@d", Subject: "Report – figures", Text: para,
			Attachments: []mailtest.Attachment{{Name: "notes.txt", ContentType: "text/plain", Data: []byte(para)}}}.Raw(),
	}
	const head = "From: a@b\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
	for _, body := range []string{
		"--B\r\nContent-Type: text/plain\r\n\r\none\r\n--B\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--B--\r\n",
		"preamble\r\n--B\r\n\r\none\r\n--B--\r\nepilogue",
		"--B\n\nlf only\n--B\nContent-Type: application/octet-stream\n\nbin\n--B--\n",
		"--B \t\r\n\r\nspace after\r\n--B-- \r\n",
		"--B\r\n\r\n--B\r\n\r\nsecond\r\n--B--",
		"--B\r\n\r\nnot --Bx a delimiter\r\n--Bx\r\nstill\r\n--B--\r\n",
		"--B\r\n\r\ncut in a delimiter\r\n--",
		"--B\r\n\r\ncut\r\n--B",
		"--B\r\n\r\nno end at all",
		"--B\r\n\r\nx\r\n--B\r\nbad header line\r\n\r\ny\r\n--B--\r\n",
		"--B\r\n folded first\r\n\r\ny\r\n--B--\r\n",
		"--B\r\nContent-Type : text/plain;\r\n charset=utf-8\r\nX:\r\n :\r\n\r\nbody\r\n--B--\r\n",
		"--B\r\nBad Name: x\r\n\r\nbody\r\n--B--\r\n",
		"--B\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nsoft\r\n--B--\r\n",
		"--B\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=x\r\n\r\naGVs\r\nbG8=\r\n--B--\r\n",
		"--B\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\nplain\r\n--A\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--A--\r\n--B--\r\n",
		"--B\r\nContent-Type: multipart/mixed; boundary=I\r\n\r\n--I\r\n\r\ninner cut\r\n--B\r\n\r\nouter\r\n--B--\r\n",
		"--B\r\nContent-Type: multipart/mixed; boundary=I\r\n\r\n--I\r\n\r\ninner\r\n--I--",
		"--B\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nsame boundary\r\n--B--\r\n",
		"--B\r\n\r\nx\r\n\r\n--B\r\n\r\ny\r\n--B--\r\n",
		"--B\r\n\r\nx\r\ngarbage\r\n--B--\r\n",
		"--B\r\nContent-Type: text/plain\r\n",
		"--B\r\nContent-Type: text/plain",
		"--B--",
		"",
	} {
		seeds = append(seeds, []byte(head+body))
	}
	seeds = append(seeds, []byte("From: a@b\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n"))
	return seeds
}

// sameAsGoMessage reports where Parse and the go-message reference read
// raw differently. Inputs whose reference reading depended on go-message's
// 4 KiB buffer are not compared: a line of more than 4 KiB where a
// delimiter line is looked for ("bufio: buffer full"), and the bytes kept
// after a broken quoted-printable escape in a part (what its reader had
// buffered).
//
// Where a part's header has a bad line the readers differ on purpose:
// go-message gives up on the multipart ("malformed MIME header"), losing
// the part and the parts after it; Parse skips the line and reads on
// (partReader.readHeader). There Parse must report a problem (the line
// skipped, or the multipart's cut end where the header reached it) and
// keep every attachment the reference read, in the same order (it may
// have more);
// unless the parts it read on for reached Limits.MaxParts, which then
// stops it before parts the reference read.
func sameAsGoMessage(raw []byte, truncated bool, lim Limits) (string, bool) {
	want := refParse(raw, truncated, lim, nil)
	for _, p := range want.Problems {
		if strings.Contains(p, "buffer full") || strings.Contains(p, "quoted-printable") {
			return "", true
		}
	}
	// A truncated message's problems say "cut at the size limit" for
	// any multipart error: the reason is read without truncated.
	gaveUp := false
	for _, p := range refParse(raw, false, lim, nil).Problems {
		gaveUp = gaveUp || strings.Contains(p, "malformed MIME header")
	}
	got := Parse(raw, truncated, lim, nil)
	if !gaveUp {
		if reflect.DeepEqual(got, want) {
			return "", true
		}
		return fmt.Sprintf("Parse %+v\nreference %+v", show(got), show(want)), false
	}
	limited := false
	for _, p := range got.Problems {
		limited = limited || strings.Contains(p, "parts: the rest are not read")
	}
	if limited {
		return "", true
	}
	kept := 0
	for _, a := range got.Attachments {
		if kept < len(want.Attachments) && reflect.DeepEqual(a, want.Attachments[kept]) {
			kept++
		}
	}
	if kept == len(want.Attachments) && len(got.Problems) > 0 {
		return "", true
	}
	return fmt.Sprintf("Parse (reading on past a bad part header line) %+v\nreference %+v", show(got), show(want)), false
}

func show(m *Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "text %q html %v problems %q", m.Text, m.HTMLBody, m.Problems)
	for _, a := range m.Attachments {
		fmt.Fprintf(&b, "\n  part %s %q %s id %q inline %v cut %v data %q", a.Section, a.FileName, a.ContentType, a.ContentID, a.Inline, a.Truncated, a.Data)
	}
	return b.String()
}

// Parse reads every seed, and every prefix of it (a message cut at the
// size limit), as the go-message reference does.
func TestPartsAreGoMessages(t *testing.T) {
	for i, raw := range partSeeds() {
		for n := 0; n <= len(raw); n++ {
			for _, truncated := range []bool{false, true} {
				if diff, ok := sameAsGoMessage(raw[:n], truncated, Limits{}); !ok {
					t.Fatalf("seed %d cut at %d (truncated %v): %q\n%s", i, n, truncated, raw[:n], diff)
				}
			}
		}
	}
}

// FuzzPartsAreGoMessages: the in-place reader reads what go-message's
// streaming reader reads (go test -fuzz FuzzPartsAreGoMessages).
func FuzzPartsAreGoMessages(f *testing.F) {
	for _, s := range partSeeds() {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, truncated bool) {
		if diff, ok := sameAsGoMessage(raw, truncated, Limits{MaxParts: 50, MaxDepth: 8}); !ok {
			t.Fatalf("%q\n%s", raw, diff)
		}
	})
}

// FuzzBase64: encoding/base64 on well-formed input, decodeBase64 on the
// rest, give what decodeBase64 alone gave (bytes and error).
func FuzzBase64(f *testing.F) {
	for _, s := range []string{"", "QQ==", "QR==", "Q===", "QQ", "QUJD", "QUJDRA==\r\nQQ==", "aGVsbG8g!!!d29ybGQ=", "aGVs\r\nbG8=\r\n", "aGVs bG8=", "=QUJD", "QUJD\n", "QUJD=QUJD", "QQ==QQ=="} {
		f.Add([]byte(s))
	}
	f.Add([]byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfe, 1, 2}, 400))))
	f.Fuzz(func(t *testing.T, in []byte) {
		want, werr := refDecodeBase64(bytes.Clone(in))
		orig := bytes.Clone(in)
		got, gerr := (&parser{}).base64(in)
		if !bytes.Equal(in, orig) {
			t.Fatalf("%q: the input changed", orig)
		}
		if !bytes.Equal(got, want) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("%q: got %q, %v; want %q, %v", in, got, gerr, want, werr)
		}
	})
}

// BenchmarkParse reads the benchmark's two kinds of message (bench/cmd/mailbench:
// a few kilobytes of text, and the same with a text attachment), with
// Parse and with the go-message reference.
// Run: go test -run X -bench Parse -benchmem ./connectors/mailfetch/mimedoc/
func BenchmarkParse(b *testing.B) {
	para := strings.Repeat("The quarterly figures are attached and the meeting moves to Thursday. ", 20)
	m := mailtest.Message{From: "sender1@example.com", To: "bench@example.com", Subject: "Report 1 – figures", Text: "Message 1.\n" + para}
	single := m.Raw()
	m.Attachments = []mailtest.Attachment{{Name: "notes-1.txt", ContentType: "text/plain", Data: []byte(para)}}
	multi := m.Raw()
	for _, c := range []struct {
		name  string
		raw   []byte
		parse func([]byte, bool, Limits, HTMLText) *Message
	}{{"single", single, Parse}, {"attachment", multi, Parse}, {"attachment-reference", multi, refParse}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.parse(c.raw, false, Limits{}, nil)
			}
		})
	}
}

// A part's attachment without a transfer encoding is a copy: it must not
// keep a whole (large) message alive while its document waits for its
// delivery batch.
func TestPartAttachmentDoesNotHoldTheMessage(t *testing.T) {
	raw := []byte("From: a@b\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\ntext\r\n" +
		"--B\r\nContent-Type: text/calendar\r\nContent-Disposition: attachment; filename=invite.ics\r\n\r\nBEGIN:VCALENDAR\r\n--B--\r\n")
	m := Parse(raw, false, Limits{}, nil)
	if len(m.Attachments) != 1 || string(m.Attachments[0].Data) != "BEGIN:VCALENDAR" {
		t.Fatalf("attachments %s", show(m))
	}
	for i := range raw {
		raw[i] = 'x'
	}
	if got := string(m.Attachments[0].Data); got != "BEGIN:VCALENDAR" {
		t.Fatalf("the attachment shares the message's memory: %q", got)
	}
}

// A bad line in a part's header is skipped, as the package doc says bad
// header lines are: the part and every part after it are read (before,
// the multipart broke off there, as go-message's reader does, and the
// attachments after it were lost). A delimiter line where a header line
// was expected ends the header: the parts after it are read too.
func TestBadPartHeaderLineKeepsThePartsAfterIt(t *testing.T) {
	const head = "From: a@b\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
	for _, c := range []struct {
		name, body string
		want       []string // the attachments: section file name data
	}{
		{"a line without a colon", "--B\r\nContent-Type: text/plain\r\n\r\nthe text\r\n" +
			"--B\r\nContent-Type: application/pdf\r\nthis line is broken\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nPDF\r\n" +
			"--B\r\nContent-Disposition: attachment; filename=b.bin\r\n\r\nBIN\r\n--B--\r\n",
			[]string{"2 a.pdf application/pdf PDF", "3 b.bin text/plain BIN"}},
		{"a name with a space", "--B\r\nContent-Type: text/plain\r\n\r\nthe text\r\n" +
			"--B\r\nBad Name: x\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nPDF\r\n" +
			"--B\r\nContent-Disposition: attachment; filename=b.bin\r\n\r\nBIN\r\n--B--\r\n",
			[]string{"2 a.pdf text/plain PDF", "3 b.bin text/plain BIN"}},
		{"a folded first line", "--B\r\nContent-Type: text/plain\r\n\r\nthe text\r\n" +
			"--B\r\n folded first\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nPDF\r\n" +
			"--B\r\nContent-Disposition: attachment; filename=b.bin\r\n\r\nBIN\r\n--B--\r\n",
			[]string{"2 a.pdf text/plain PDF", "3 b.bin text/plain BIN"}},
		{"a header without its blank line", "--B\r\nContent-Type: text/plain\r\n\r\nthe text\r\n" +
			"--B\r\nContent-Type: text/plain\r\n" +
			"--B\r\nContent-Disposition: attachment; filename=b.bin\r\n\r\nBIN\r\n--B--\r\n",
			[]string{"3 b.bin text/plain BIN"}},
	} {
		m := Parse([]byte(head+c.body), false, Limits{}, nil)
		var got []string
		for _, a := range m.Attachments {
			got = append(got, fmt.Sprintf("%s %s %s %s", a.Section, a.FileName, a.ContentType, a.Data))
		}
		if !reflect.DeepEqual(got, c.want) || !strings.HasPrefix(m.Text, "the text") || len(m.Problems) != 1 || !strings.Contains(m.Problems[0], "skipped") {
			t.Errorf("%s: attachments %q text %q problems %q, want attachments %q", c.name, got, m.Text, m.Problems, c.want)
		}
	}
}
