package extract

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The text of a SmartArt diagram (a process, a list, an org chart: the
// commonest slide graphics) is in a part of its own (ppt/diagrams/dataN.xml)
// that the slide points to by a relationship, not in the slide: it was
// never read, so "Plan" and "Build" of a slide's process diagram could not
// be found. A slide's diagrams follow its own text, before its notes.
func TestPPTXSmartArtText(t *testing.T) {
	const p = `xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"`
	pt := func(s string) string {
		return `<dgm:pt modelId="{` + s + `}"><dgm:prSet/><dgm:spPr/><dgm:t><a:bodyPr/><a:lstStyle/><a:p><a:r><a:rPr lang="en-US"/><a:t>` + s + `</a:t></a:r></a:p></dgm:t></dgm:pt>`
	}
	data := zipOf(t,
		"ppt/presentation.xml", `<p:presentation `+p+`/>`,
		"ppt/slides/slide1.xml", `<p:sld `+p+`><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>Roadmap</a:t></a:r></a:p></p:txBody></p:sp>`+
			`<p:graphicFrame><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/diagram">`+
			`<dgm:relIds xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:dm="rId2" r:lo="rId3" r:qs="rId4" r:cs="rId5"/>`+
			`</a:graphicData></a:graphic></p:graphicFrame></p:spTree></p:cSld></p:sld>`,
		"ppt/slides/_rels/slide1.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+
			`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/diagramData" Target="../diagrams/data1.xml"/>`+
			`<Relationship Id="rId6" Type="http://schemas.microsoft.com/office/2007/relationships/diagramDrawing" Target="../diagrams/drawing1.xml"/>`+
			`<Relationship Id="rId7" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" Target="../notesSlides/notesSlide1.xml"/>`+
			`</Relationships>`,
		"ppt/diagrams/data1.xml", `<dgm:dataModel xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><dgm:ptLst>`+
			`<dgm:pt modelId="{0}" type="doc"><dgm:prSet/><dgm:spPr/><dgm:t><a:bodyPr/><a:lstStyle/><a:p><a:endParaRPr/></a:p></dgm:t></dgm:pt>`+
			pt("Plan")+pt("Build")+`</dgm:ptLst></dgm:dataModel>`,
		// The drawing Office caches of the same diagram: the same text again.
		"ppt/diagrams/drawing1.xml", `<dsp:drawing xmlns:dsp="http://schemas.microsoft.com/office/drawing/2008/diagram" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">`+
			`<dsp:spTree><dsp:sp><dsp:txBody><a:p><a:r><a:t>Plan</a:t></a:r></a:p></dsp:txBody></dsp:sp></dsp:spTree></dsp:drawing>`,
		"ppt/notesSlides/notesSlide1.xml", `<p:notes `+p+`><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>Say it slowly</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:notes>`)
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: data, Name: "deck.pptx"})
	require.NoError(t, err)
	assert.Equal(t, "Roadmap\n\nPlan\nBuild\n\nSay it slowly", d.Text)
}

// A slide's comments (ppt/comments/commentN.xml, and the threaded
// comments of PowerPoint 365 in ppt/comments/modernComment_*.xml) were
// left out, though an OpenDocument presentation's comments are indexed,
// as a docx's are. They follow the slide's notes, a line per comment (a
// paragraph of a threaded one), without their authors.
func TestPPTXComments(t *testing.T) {
	const p = `xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"`
	data := zipOf(t,
		"ppt/presentation.xml", `<p:presentation `+p+`/>`,
		"ppt/slides/slide1.xml", `<p:sld `+p+`><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>Roadmap</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>`,
		"ppt/slides/_rels/slide1.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+
			`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments" Target="../comments/comment1.xml"/>`+
			`<Relationship Id="rId3" Type="http://schemas.microsoft.com/office/2018/10/relationships/comments" Target="../comments/modernComment_100_5A1B2C3D.xml"/>`+
			`<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" Target="../notesSlides/notesSlide1.xml"/>`+
			`</Relationships>`,
		"ppt/notesSlides/notesSlide1.xml", `<p:notes `+p+`><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>Say it slowly</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:notes>`,
		"ppt/comments/comment1.xml", `<p:cmLst `+p+`><p:cm authorId="0" dt="2026-01-01T10:00:00.000" idx="1"><p:pos x="10" y="10"/><p:text>Add a diagram.</p:text></p:cm>`+
			`<p:cm authorId="1" dt="2026-01-02T10:00:00.000" idx="2"><p:pos x="10" y="10"/><p:text>Which quarter?</p:text></p:cm></p:cmLst>`,
		"ppt/comments/modernComment_100_5A1B2C3D.xml", `<p188:cmLst xmlns:p188="http://schemas.microsoft.com/office/powerpoint/2018/8/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">`+
			`<p188:cm id="{1}" authorId="{2}" created="2026-01-03T10:00:00.000"><p188:txBody><a:bodyPr/><a:lstStyle/><a:p><a:r><a:t>Check the dates.</a:t></a:r></a:p></p188:txBody></p188:cm></p188:cmLst>`)
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: data, Name: "deck.pptx"})
	require.NoError(t, err)
	assert.Equal(t, "Roadmap\n\nSay it slowly\n\nCheck the dates.\n\nAdd a diagram.\nWhich quarter?", d.Text)
}

// A SmartArt diagram in a docx (an org chart, a process in a report)
// keeps its text in its data part (word/diagrams/dataN.xml), which the
// paragraph holding the diagram points to, as a slide does: a docx's
// diagrams were never read, so their text could not be found. It is
// where the diagram stands, a line per node.
func TestDOCXSmartArtText(t *testing.T) {
	data := zipOf(t, "[Content_Types].xml", `<Types/>`,
		"word/document.xml", `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`+
			` xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><w:body>`+
			`<w:p><w:r><w:t>Our team:</w:t></w:r></w:p><w:p><w:r><w:drawing><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/diagram">`+
			`<dgm:relIds xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:dm="rId8" r:lo="rId9" r:qs="rId10" r:cs="rId11"/>`+
			`</a:graphicData></a:graphic></w:drawing></w:r></w:p><w:p><w:r><w:t>The end.</w:t></w:r></w:p></w:body></w:document>`,
		"word/_rels/document.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+
			`<Relationship Id="rId8" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/diagramData" Target="diagrams/data1.xml"/></Relationships>`,
		"word/diagrams/data1.xml", `<dgm:dataModel xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><dgm:ptLst>`+
			`<dgm:pt modelId="{1}"><dgm:t><a:bodyPr/><a:p><a:r><a:t>Ann Smith</a:t></a:r></a:p></dgm:t></dgm:pt>`+
			`<dgm:pt modelId="{2}"><dgm:t><a:bodyPr/><a:p><a:r><a:t>Bob Jones</a:t></a:r></a:p></dgm:t></dgm:pt></dgm:ptLst></dgm:dataModel>`)
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: data})
	require.NoError(t, err)
	assert.Equal(t, "Our team:\n\nAnn Smith\nBob Jones\n\nThe end.", d.Text)
}
