package extract

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RTF text may hold 8-bit characters as they are, not only as \'hh: they
// are in the document's code page like \'hh. They were read as Latin-1:
// "€" (0x80 in Windows-1252) came out as the control character U+0080,
// curly quotes as U+0093/U+0094, Russian text in code page 1251 as
// "Ïðèâåò". In a double-byte code page the second byte of a character
// may be any byte from 0x40, ASCII letters and \\ included (テ is 0x83
// 'e' in Shift_JIS), whether the first is written as it is or as \'hh.
func TestRTFEightBitTextInTheCodePage(t *testing.T) {
	x := newX(t, Limits{})
	for _, tc := range []struct{ src, want string }{
		{"{\\rtf1\\ansi\\ansicpg1252 price \x80 5, \x93quoted\x94 caf\xe9}", "price € 5, “quoted” café"},
		{"{\\rtf1\\ansi\\ansicpg1251 \xcf\xf0\xe8\xe2\xe5\xf2 \\'cc\\'e8\xf0}", "Привет Мир"},
		{"{\\rtf1\\ansi\\ansicpg932 \x83e\x83X\x83g \\'83e\\'83X\\'83g \x95\\\\ \\'95\\'5c \xb1}", "テスト テスト 表 表 ｱ"},
		{"{\\rtf1\\ansi\\ansicpg936 \xd6\xd0\xce\xc4}", "中文"},
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(tc.src)})
		require.NoError(t, err)
		assert.Equal(t, tc.want, d.Text, "%q", tc.src)
	}
}

// Word writes a footnote as a {\footnote ...} group where its mark
// stands, inside the paragraph; the space after the mark's \chftn ends
// the control word. Its text ran into the word before the mark
// ("meadowA footnote.") and cut the paragraph's phrase in two. It now
// follows the paragraph, on a line of its own, as OpenDocument notes do.
func TestRTFFootnoteFollowsItsParagraph(t *testing.T) {
	x := newX(t, Limits{})
	src := `{\rtf1\ansi\deff0{\fonttbl{\f0 Times;}}\pard The meadow{\super\chftn}{\footnote\ltrpar\pard\plain{\super\chftn }A footnote.}` +
		` was green{\*\atnid A}{\*\atnauthor Ann}\chatn{\*\annotation\pard\plain Check this.}ish today.\par Next paragraph.` +
		`{\footnote\pard\plain{\super\chftn }Last note.}\par}`
	d, err := x.Extract(context.Background(), Input{Data: []byte(src)})
	require.NoError(t, err)
	// The comment anchored in the paragraph follows it too, after the
	// footnote (TestRTFAnnotationFollowsItsParagraph).
	assert.Equal(t, "The meadow was greenish today.\nA footnote.\nCheck this.\nNext paragraph.\nLast note.", d.Text)
}

// WordPad, and older writers, give a run in another script a font of
// that script's character set (\fcharsetN in the font table) and write
// its characters as \'hh bytes of that charset's code page, whatever
// \ansicpg says: Russian in a Western document came out as "Ïðèâåò",
// Greek and Polish the same way. A font's charset now decides the code
// page of its runs (the document's for ANSI and default), and the font
// is a property of its group, as RTF says.
func TestRTFFontCharsetDecidesTheCodePage(t *testing.T) {
	x := newX(t, Limits{})
	for _, tc := range []struct{ src, want string }{
		{`{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fnil\fcharset0 Calibri;}{\f1\fnil\fcharset204 Calibri;}{\f2\fswiss\fcharset161 Arial;}}` +
			`\pard caf\'e9 {\f1\'cf\'f0\'e8\'e2\'e5\'f2} caf\'e9 \f2\'e1\'e5\'f4\'e1\f0  caf\'e9\par` +
			`\plain\f1 \'cc\'e8\'f0\par}`, "café Привет café αετα café\nМир"},
		// Without inner groups in the table, \cpg instead of
		// \fcharset, and a double-byte charset.
		{`{\rtf1\ansi{\fonttbl\f0\froman Times;\f1\fnil\cpg1250 Arial;\f2\fnil\fcharset128 MS Mincho;}` +
			`\f1 \'9c\'e6\f2 \'83e\'83X\'83g\f0  \'e9}`, "śćテスト é"},
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(tc.src)})
		require.NoError(t, err)
		assert.Equal(t, tc.want, d.Text, "%q", tc.src)
	}
}

// A NUL byte in an RTF document (RichEdit controls stream their text out
// with the C string's terminator, which applications save with it) or in
// an HTML page went into the text as it is: a NUL in DRECONTENT, which
// text formats downstream take for the end of the string. NUL bytes are
// dropped from the text and the metadata, as plain text's are (and as
// HTML's parsing drops them from a body's text).
func TestNULBytesAreDropped(t *testing.T) {
	x := newX(t, Limits{})
	for _, in := range []Input{
		{Data: []byte("{\\rtf1\\ansi{\\info{\\title Re\x00port}}Hello\x00 world\\par}\x00")},
		{Data: []byte("<html><head><title>Report</title></head><body><p>Hello\x00 world</p></body></html>\x00"), ContentType: "text/html"},
	} {
		d, err := x.Extract(context.Background(), in)
		require.NoError(t, err)
		assert.Equal(t, "Hello world", d.Text, "%q", in.Data)
		assert.Equal(t, "Report", d.Title, "%q", in.Data)
	}
}

// WordPad and RichEdit on Windows set to UTF-8 as its ANSI code page
// (the "Unicode UTF-8 for worldwide language support" option) write
// \ansicpg65001 and their text's bytes in UTF-8, as they are or as \'hh.
// Code page 65001 was unknown, so the text was read as Windows-1252:
// "café" came out "cafÃ©". It is UTF-8, also as a font's \cpg.
func TestRTFCodePage65001IsUTF8(t *testing.T) {
	x := newX(t, Limits{})
	for _, tc := range []struct{ src, want string }{
		{"{\\rtf1\\ansi\\ansicpg65001 caf\\'c3\\'a9 \xe2\x82\xac 5 \\'e4\\'b8\\'ad\xe6\x96\x87}", "café € 5 中文"},
		{"{\\rtf1\\ansi{\\fonttbl{\\f1\\cpg65001 Arial;}}{\\f1 \\'c3\\'a9t\\'c3\\'a9} caf\\'e9}", "été café"},
		// A run longer than the parts it is decoded in.
		{"{\\rtf1\\ansicpg65001 " + strings.Repeat("\xe4\xb8\xad", 3000) + "}", strings.Repeat("中", 3000)},
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(tc.src)})
		require.NoError(t, err)
		assert.Equal(t, tc.want, d.Text, "%q", tc.src)
	}
}

// Word and LibreOffice write a text box as a shape, {\shp{\*\shpinst
// ...}}, its paragraphs in the shape's \shptxt and a picture of it for
// old readers in {\shprslt{\*\do ...}}. The whole \*\shpinst was skipped
// as a destination a reader may ignore: a text box's words were never
// indexed. They are now read, on lines of their own, without the
// shape's properties ({\sp{\sn ...}{\sv ...}}).
func TestRTFTextBoxText(t *testing.T) {
	x := newX(t, Limits{})
	src := `{\rtf1\ansi\deff0{\fonttbl{\f0 Calibri;}}\pard Before the box.{\shp{\*\shpinst\shpleft0\shptop0\shpright3000\shpbottom1000` +
		`\shpfhdr0\shpbxcolumn\shpbypara\shpwr3\shpz0\shplid1026{\sp{\sn shapeType}{\sv 202}}{\sp{\sn fFlipH}{\sv 0}}` +
		`{\sp{\sn pib}{\sv {\pict\wmetafile8 0102}}}{\sp{\sn wzName}{\sv Text Box 2}}` +
		`{\shptxt \pard\plain Boxed \b words\b0\par Second line\par}}` +
		`{\shprslt{\*\do\dobxcolumn\dobypara\dptxbx{\dptxbxtext\pard Boxed words\par Second line\par}}}}After the box.\par Next.}`
	d, err := x.Extract(context.Background(), Input{Data: []byte(src)})
	require.NoError(t, err)
	assert.Equal(t, "Before the box.\nBoxed words\nSecond line\nAfter the box.\nNext.", d.Text)
}

// Word writes a footnote's last paragraph without a \par: two footnotes
// of one paragraph ran together after it ("A footnote.B note."), the
// last word of one glued to the first of the next. Each note starts a
// line.
func TestRTFFootnotesOfOneParagraph(t *testing.T) {
	x := newX(t, Limits{})
	src := `{\rtf1\ansi The meadow{\super\chftn}{\footnote\pard\plain{\super\chftn }A footnote.} was{\super\chftn}` +
		`{\footnote\pard\plain{\super\chftn }Second note.} green.\par Next.}`
	d, err := x.Extract(context.Background(), Input{Data: []byte(src)})
	require.NoError(t, err)
	assert.Equal(t, "The meadow was green.\nA footnote.\nSecond note.\nNext.", d.Text)
}

// A comment (an annotation: {\*\annotation ...} where it is anchored)
// was skipped as a destination a reader may ignore, though a docx's and
// an OpenDocument text's comments are indexed: a reviewer's words were
// found in the document saved as docx or odt, not as RTF. A comment
// follows its paragraph on lines of its own, as a footnote does, without
// its author, initials, date or reference.
func TestRTFAnnotationFollowsItsParagraph(t *testing.T) {
	x := newX(t, Limits{})
	src := `{\rtf1\ansi The {\*\atrfstart 1}meadow was{\*\atrfend 1}{\*\atnid AS}{\*\atnauthor Ann Smith}\chatn` +
		`{\*\annotation{\*\atnref 1}{\*\atndate 1234}\pard\plain{\field{\*\fldinst {\chatn }}{\fldrslt }}Check this.} green.\par Next.}`
	d, err := x.Extract(context.Background(), Input{Data: []byte(src)})
	require.NoError(t, err)
	assert.Equal(t, "The meadow was green.\nCheck this.\nNext.", d.Text)
}

// Text separates a row's cells by tabs, and a row's trailing empty cells
// write nothing (Document.Text), as a docx's or an odt's table does. RTF
// ends every cell with \cell, the last included, and each \cell wrote a
// tab: every row of an RTF table ended in one tab per trailing cell, an
// empty column more than the table has. A cell's tab is now written
// before the next cell's text only.
func TestRTFTableRowsEndWithoutTabs(t *testing.T) {
	x := newX(t, Limits{})
	src := `{\rtf1\ansi\trowd\cellx1000\cellx2000\cellx3000\pard\intbl A\cell\cell C\cell\row` +
		`\trowd\cellx1000\cellx2000\cellx3000\pard\intbl D\cell\cell\cell\row` +
		`\trowd\cellx1000\cellx2000\pard\intbl\cell E\tab F\cell\row\pard Next\par}`
	d, err := x.Extract(context.Background(), Input{Data: []byte(src)})
	require.NoError(t, err)
	assert.Equal(t, "A\t\tC\nD\n\tE\tF\nNext", d.Text)
}

// WordArt (Word's shape of type 136, what Word 97-2003 and LibreOffice's
// Fontwork write, a heading or a banner) keeps its text in a shape
// property, {\sp{\sn gtextUNICODE}{\sv ...}}, not in a \shptxt: all
// properties were skipped, and the WordArt's words never indexed. Its
// text stands on a line of its own, as a text box's does; the other
// properties (the font, the name) are still skipped, and so is WordArt
// in a header.
func TestRTFWordArtText(t *testing.T) {
	x := newX(t, Limits{})
	shape := func(text string) string {
		return `{\shp{\*\shpinst\shpleft0\shptop0\shpright5000\shpbottom1000\shpwr3\shpz0\shplid2049` +
			`{\sp{\sn shapeType}{\sv 136}}{\sp{\sn gtextUNICODE}{\sv ` + text + `}}{\sp{\sn gtextSize}{\sv 2359296}}` +
			`{\sp{\sn gtextFont}{\sv Arial Black}}{\sp{\sn fGtext}{\sv 1}}{\sp{\sn wzName}{\sv WordArt 1}}}` +
			`{\shprslt{\*\do\dobxcolumn\dobypara{\pict\wmetafile8 0102}}}}`
	}
	src := `{\rtf1\ansi\deff0{\fonttbl{\f0 Calibri;}}{\header \pard Page head` + shape("Header art") + `\par}` +
		`\pard Before the art.` + shape(`Annual report 2024 \u8211? Z\'fcrich`) + `After the art.\par Next.}`
	d, err := x.Extract(context.Background(), Input{Data: []byte(src)})
	require.NoError(t, err)
	assert.Equal(t, "Before the art.\nAnnual report 2024 \u2013 Z\u00fcrich\nAfter the art.\nNext.", d.Text)
}
