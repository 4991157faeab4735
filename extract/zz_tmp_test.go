package extract

import (
	"context"
	"fmt"
	"testing"
)

func TestTmpOdd(t *testing.T) {
	x := newX(t, Limits{})
	docx := read(t, "hello.docx")
	for i, in := range []Input{
		{Data: nil, Name: "a.docx"},
		{Data: nil, Name: "a.pdf"},
		{Data: nil, ContentType: "application/pdf"},
		{Data: []byte{}, Name: "a.txt"},
		{Data: []byte("%PDF-1.4\n"), Name: "a.pdf"},
		{Data: docx[:len(docx)/2], Name: "a.docx"},
		{Data: docx[:len(docx)/2]},
		{Data: []byte(`{\rtf1`)},
		{Data: []byte(`{\rtf1 Hello}} trailing text`)},
		{Data: []byte("{\\rtf1\\ansi\\uc1 a\\u8364?b \\u-4064?c {\\uc0 x\\u8364 y}}")},
		{Data: []byte("{\\rtf1\\ansi A\\bin5 {}{}x B}")},
		{Data: []byte("{\\rtf1\\ansi\\uc1 A\\u8364\\bin3 xyzB}")},
		{Data: []byte("{\\rtf1\\ansi{\\*\\htmltag <p>}Hello {\\htmlrtf \\par }world}")},
		{Data: []byte("{\\rtf1\\ansi\\trowd\\cellx1000\\cellx2000 A\\cell B\\cell\\row Next\\par}")},
		{Data: []byte("a,b\r\nc,\xe9\r\n"), Name: "x.csv"},
		{Data: []byte("\xff\xfea\x00,\x00b\x00"), Name: "x.csv"},
		{Data: []byte("<html><body>caf\xe9</body></html>"), ContentType: "text/html"},
		{Data: []byte("<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><body>x</body></html>"), Name: "a.xhtml"},
		{Data: []byte("{\\rtf1\\ansi\\ansicpg1252{\\fonttbl{\\f0\\fcharset0 Arial;}{\\f1\\fcharset2 Symbol;}}\\f0 a {\\f1 \\'b7} b}")},
		{Data: []byte("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0\\fcharset204 Arial;}}\\f0\\'cf\\'f0 {\\lang1033\\f0 \\'cf}}")},
		{Data: []byte("{\\rtf1{\\info{\\title T\\u233?t}{\\author A\\'e9}}body}")},
	} {
		d, err := x.Extract(context.Background(), in)
		if err != nil {
			fmt.Printf("%d: %s err=%v\n", i, Detect(in), err)
			continue
		}
		fmt.Printf("%d: %s %q title=%q author=%q\n", i, d.Format, d.Text, d.Title, d.Author)
	}
}
