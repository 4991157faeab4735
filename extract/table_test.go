package extract

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A table whose first cell is empty (the top-left corner of a table with
// row and column headings) kept its columns only from the second cell on:
// the separator before the first non-empty cell was dropped at the line's
// start, so "\tQ1\tQ2" came out as "Q1\tQ2", every value one column to the
// left of its heading. xlsx lost every empty cell (a sparse row "a,,c"
// came out as "a\tc"); HTML and pptx wrote a separator before every cell,
// which only the dropping at a line's start hid, and pptx put each cell
// on a line of its own (a paragraph's end ended the line in a cell too). Cells keep their columns
// in every format; a row's trailing empty cells, and rows with no text,
// write nothing.
func TestEmptyTableCellsKeepTheirColumns(t *testing.T) {
	const want = "\tQ1\tQ2\nNorth\t\t7\n\t\t9"
	x := newX(t, Limits{})
	cell := func(s string) string {
		if s == "" {
			return `<w:tc><w:p/></w:tc>`
		}
		return `<w:tc><w:p><w:r><w:t>` + s + `</w:t></w:r></w:p></w:tc>`
	}
	row := func(cells ...string) string {
		s := `<w:tr>`
		for _, c := range cells {
			s += cell(c)
		}
		return s + `</w:tr>`
	}
	docx := docxPackage(t, `<w:tbl>`+row("", "Q1", "Q2")+row("North", "", "7")+row("", "", "9")+row("", "", "")+`</w:tbl>`)

	ocell := func(s string) string {
		if s == "" {
			return `<table:table-cell/>`
		}
		return `<table:table-cell><text:p>` + s + `</text:p></table:table-cell>`
	}
	orow := func(cells ...string) string {
		s := `<table:table-row>`
		for _, c := range cells {
			s += ocell(c)
		}
		return s + `</table:table-row>`
	}
	odt := odfPackage(t, "application/vnd.oasis.opendocument.text", `<office:text><table:table>`+
		orow("", "Q1", "Q2")+orow("North", "", "7")+orow("", "", "9")+orow("", "", "")+`</table:table></office:text>`)

	html := []byte(`<html><body><table><tr><td></td><th>Q1</th><th>Q2</th></tr><tr><td>North</td><td></td><td>7</td></tr>` +
		`<tr><td></td><td></td><td>9</td></tr><tr><td></td><td></td><td></td></tr></table></body></html>`)

	pcell := func(s string) string {
		if s == "" {
			return `<a:tc><a:txBody><a:p/></a:txBody></a:tc>`
		}
		return `<a:tc><a:txBody><a:p><a:r><a:t>` + s + `</a:t></a:r></a:p></a:txBody></a:tc>`
	}
	prow := func(cells ...string) string {
		s := `<a:tr>`
		for _, c := range cells {
			s += pcell(c)
		}
		return s + `</a:tr>`
	}
	pptx := zipOf(t, "ppt/presentation.xml", `<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>`,
		"ppt/slides/slide1.xml", `<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">`+
			`<p:cSld><p:spTree><p:graphicFrame><a:graphic><a:graphicData><a:tbl>`+
			prow("", "Q1", "Q2")+prow("North", "", "7")+prow("", "", "9")+prow("", "", "")+
			`</a:tbl></a:graphicData></a:graphic></p:graphicFrame></p:spTree></p:cSld></p:sld>`)

	xlsx := zipOf(t,
		"xl/workbook.xml", `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`+
			`<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+
			`<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>`,
		// Excel writes no element for an empty cell: B2, A3 and B3 are
		// absent, and so is row 4.
		"xl/worksheets/sheet1.xml", `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`+
			`<row r="1"><c r="B1" t="inlineStr"><is><t>Q1</t></is></c><c r="C1" t="inlineStr"><is><t>Q2</t></is></c></row>`+
			`<row r="2"><c r="A2" t="inlineStr"><is><t>North</t></is></c><c r="C2"><v>7</v></c></row>`+
			`<row r="3"><c r="C3"><v>9</v></c></row></sheetData></worksheet>`)

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"docx", docx, want},
		{"odt", odt, want},
		{"html", html, want},
		{"pptx", pptx, want},
		{"xlsx", xlsx, "S\n" + want},
	} {
		d, err := x.Extract(context.Background(), Input{Data: c.data, Name: "t." + c.name})
		require.NoError(t, err, c.name)
		// Blank lines between rows are each format's style (a row is a
		// block of HTML); the columns are what this is about.
		assert.Equal(t, c.want, strings.ReplaceAll(d.Text, "\n\n", "\n"), c.name)
	}
}

// OpenDocument writes a run of like cells once, with
// table:number-columns-repeated: two empty cells before a value, the same
// value in three cells in a row. Each run counted as one cell: the value
// after two empty cells came out one column to the left, and "x" three
// times as one "x". A run is its cells: empty ones keep their columns, a
// value is written in each.
func TestODFRepeatedCellsAreTheirCells(t *testing.T) {
	ods := odfPackage(t, "application/vnd.oasis.opendocument.spreadsheet", `<office:spreadsheet><table:table table:name="S">`+
		`<table:table-row><table:table-cell table:number-columns-repeated="2"/><table:table-cell><text:p>5</text:p></table:table-cell>`+
		`<table:table-cell table:number-columns-repeated="3"><text:p>x</text:p></table:table-cell>`+
		`<table:table-cell table:number-columns-repeated="1018"/></table:table-row>`+
		`<table:table-row><table:table-cell><text:p>a</text:p></table:table-cell><table:covered-table-cell table:number-columns-repeated="2"/>`+
		`<table:table-cell><text:p>b</text:p></table:table-cell></table:table-row>`+
		// A hostile count is bounded by the columns of a sheet.
		`<table:table-row><table:table-cell table:number-columns-repeated="2000000000"><text:p>y</text:p></table:table-cell></table:table-row>`+
		`</table:table></office:spreadsheet>`)
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: ods})
	require.NoError(t, err)
	lines := strings.Split(d.Text, "\n")
	require.Len(t, lines, 4, "%q", d.Text[:min(len(d.Text), 100)])
	assert.Equal(t, []string{"S", "\t\t5\tx\tx\tx", "a\t\t\tb"}, lines[:3])
	assert.Equal(t, 16384, strings.Count(lines[3], "y"), "a sheet's columns")
	assert.True(t, lines[3] == strings.Repeat("y\t", 16383)+"y", "a row of y")
}

// OpenDocument writes a run of like rows once, with
// table:number-rows-repeated (LibreOffice does so for identical rows in
// a row, and for the empty rows down to a sheet's end). Each run counted
// as one row: a value repeated down a column was indexed once, and the
// sheet's rows did not line up with its xlsx's. A run is its rows; empty
// ones write nothing however many they are, and a hostile count is
// bounded by the rows of a sheet.
func TestODFRepeatedRowsAreTheirRows(t *testing.T) {
	row := func(repeat, cells string) string {
		return `<table:table-row table:number-rows-repeated="` + repeat + `">` + cells + `</table:table-row>`
	}
	ods := odfPackage(t, "application/vnd.oasis.opendocument.spreadsheet", `<office:spreadsheet><table:table table:name="S">`+
		`<table:table-row><table:table-cell><text:p>head</text:p></table:table-cell></table:table-row>`+
		row("3", `<table:table-cell/><table:table-cell table:number-columns-repeated="2"><text:p>0</text:p></table:table-cell>`)+
		row("1048570", `<table:table-cell table:number-columns-repeated="1024"/>`)+
		`<table:table-row><table:table-cell><text:p>end</text:p></table:table-cell></table:table-row>`+
		`</table:table><table:table table:name="T">`+row("2000000000", `<table:table-cell><text:p>y</text:p></table:table-cell>`)+
		`</table:table></office:spreadsheet>`)
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: ods})
	require.NoError(t, err)
	sheetS, sheetT, ok := strings.Cut(d.Text, "\n\nT\n")
	require.True(t, ok, "%q", d.Text[:min(len(d.Text), 100)])
	assert.Equal(t, "S\nhead\n\t0\t0\n\t0\t0\n\t0\t0\n\nend", sheetS)
	assert.Equal(t, 1<<20, strings.Count(sheetT, "y"), "a sheet's rows")
	assert.True(t, sheetT == strings.Repeat("y\n", 1<<20-1)+"y", "a column of y")
	assert.Equal(t, 2, d.Pages)
}
