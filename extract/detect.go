package extract

import (
	"archive/zip"
	"bytes"
	"mime"
	"path"
	"strings"
)

// Detect returns the format of in, or "" when it is none of Formats. The
// content decides first: "%PDF-" at the start (or in the first 1024 bytes
// of something declared neither HTML nor text, nor a zip), "{\rtf", a zip
// archive holding an OpenDocument "mimetype" or an Office Open XML main
// part (a zip without one, or too damaged to read, is the package format
// its media type or extension declares, if any: its extraction fails as
// ErrMalformed; so is an OLE compound file, which is how Office saves a
// password-protected package: ErrEncrypted); then the media type of
// ContentType (any text/* type but HTML and RTF, and JSON, are plain text:
// PlainText), then the extension of Name. A document whose bytes contradict its declared type (an HTML
// error page served as application/pdf; a .csv file or an HTML table
// declared as one of Office's old binary formats, application/vnd.ms-excel
// or application/msword, which is not an OLE compound file) is detected
// by its bytes, or the extension of Name when it says HTML or text.
func Detect(in Input) Format {
	data := in.Data
	head := data[:min(len(data), 1024)]
	switch {
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return PDF
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		// A zip, whatever its members hold (a PDF stored uncompressed
		// puts "%PDF-" in its first kilobyte).
		if f := zipFormat(data); f != "" {
			return f
		}
		// A zip with none of the packages' parts, or too damaged to
		// read: a document declared as one is that format, whose
		// extractor then says what is wrong with it (ErrMalformed).
		return declaredPackage(in)
	case bytes.HasPrefix(data, cfbMagic):
		// An OLE compound file: what Office writes for a password-protected
		// docx, xlsx or pptx (its extractor says so: ErrEncrypted), and
		// the old binary formats, which are none of Formats.
		return declaredPackage(in)
	case bytes.Contains(head, []byte("%PDF-")) && !sniffHTML(head) && !textual(in.ContentType):
		// A PDF may start with up to 1024 bytes of junk; a web page or a
		// text that mentions "%PDF-" is not one.
		return PDF
	case bytes.HasPrefix(bytes.TrimLeft(head, "\xef\xbb\xbf \t\r\n"), []byte(`{\rtf`)):
		return RTF
	}
	mt := mediaType(in.ContentType)
	contradicted := false // a declared document format the bytes do not bear out
	if f, ok := byMediaType[mt]; ok {
		switch f {
		case PDF, RTF, DOCX, XLSX, PPTX, ODT, ODS, ODP:
			contradicted = true
		default:
			return f
		}
	} else if PlainText(mt) {
		return Text
	} else if oldOffice[mt] {
		contradicted = true // the bytes are not an OLE compound file (seen above)
	}
	if mt == "" || mt == "application/octet-stream" || contradicted {
		if f, ok := byExtension[strings.ToLower(path.Ext(namePath(in.Name)))]; ok {
			switch f {
			case HTML, Text:
				return f
			}
		}
		if sniffHTML(head) {
			return HTML
		}
	}
	return ""
}

// oldOffice are the media types of Office's old binary formats (OLE
// compound files), which are none of Formats, but which Windows gives
// .csv files (application/vnd.ms-excel: how Outlook attaches them), and
// web applications' "export to Excel" or "to Word" HTML tables: a body
// of another kind declared so is told by its extension or its bytes.
var oldOffice = map[string]bool{
	"application/vnd.ms-excel":      true,
	"application/msword":            true,
	"application/vnd.ms-powerpoint": true,
}

// cfbMagic starts an OLE compound file (MS-CFB).
var cfbMagic = []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")

// zipFormat tells an OpenDocument or Office Open XML package by its
// members.
func zipFormat(data []byte) Format {
	if _, over := tooManyMembers(data); over {
		return "" // not read (its extraction says why: ErrLimit)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return ""
	}
	has := map[string]bool{}
	for i, f := range zr.File {
		if i >= DefaultMaxArchiveMember {
			break
		}
		has[f.Name] = true
		if f.Name == "mimetype" && f.UncompressedSize64 < 200 {
			rc, err := f.Open()
			if err != nil {
				continue
			}
			var b [200]byte
			n, _ := rc.Read(b[:])
			rc.Close()
			mt := strings.TrimSpace(string(b[:n]))
			for _, suffix := range []string{"", "-template"} {
				switch mt {
				case "application/vnd.oasis.opendocument.text" + suffix:
					return ODT
				case "application/vnd.oasis.opendocument.spreadsheet" + suffix:
					return ODS
				case "application/vnd.oasis.opendocument.presentation" + suffix:
					return ODP
				}
			}
		}
	}
	switch {
	case has["word/document.xml"]:
		return DOCX
	case has["xl/workbook.xml"]:
		return XLSX
	case has["ppt/presentation.xml"]:
		return PPTX
	case has["content.xml"] && has["META-INF/manifest.xml"]:
		// An OpenDocument package without a mimetype member: decide by the
		// manifest's root entry.
		return odfByManifest(zr)
	}
	return ""
}

// declaredPackage returns the Office Open XML or OpenDocument format in
// is declared as by its media type, else by its extension; "" for none.
func declaredPackage(in Input) Format {
	f, ok := byMediaType[mediaType(in.ContentType)]
	if !ok {
		f = byExtension[strings.ToLower(path.Ext(namePath(in.Name)))]
	}
	switch f {
	case DOCX, XLSX, PPTX, ODT, ODS, ODP:
		return f
	}
	return ""
}

// MediaType returns the media type of format f ("" for none): the one
// servers declare it by (text/plain for txt).
func (f Format) MediaType() string {
	switch f {
	case RTF:
		return "application/rtf"
	case Text:
		return "text/plain"
	}
	for mt, g := range byMediaType {
		if g == f && !strings.HasPrefix(mt, "application/xhtml") {
			return mt
		}
	}
	return ""
}

var byMediaType = map[string]Format{
	"application/pdf": PDF,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   DOCX,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         XLSX,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": PPTX,
	"application/vnd.oasis.opendocument.text":                                   ODT,
	"application/vnd.oasis.opendocument.spreadsheet":                            ODS,
	"application/vnd.oasis.opendocument.presentation":                           ODP,
	"application/rtf":       RTF,
	"text/rtf":              RTF,
	"text/html":             HTML,
	"application/xhtml+xml": HTML,
	"text/plain":            Text,
}

var byExtension = map[string]Format{
	".pdf": PDF, ".docx": DOCX, ".xlsx": XLSX, ".pptx": PPTX, ".odt": ODT, ".ods": ODS, ".odp": ODP,
	".rtf": RTF, ".html": HTML, ".htm": HTML, ".xhtml": HTML, ".txt": Text, ".text": Text,
	".csv": Text, ".tsv": Text, ".md": Text, ".markdown": Text, ".json": Text, ".log": Text,
}

// namePath is the path part of a URL or file name.
func namePath(name string) string {
	if i := strings.IndexAny(name, "?#"); i >= 0 {
		name = name[:i]
	}
	return name
}

func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(ct, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	return mt
}

// textual reports a declared HTML or plain-text type.
func textual(ct string) bool {
	mt := mediaType(ct)
	return mt == "text/html" || mt == "application/xhtml+xml" || PlainText(mt)
}

// PlainText reports whether the media type mt (lower case, without
// parameters) is read as plain text: text/plain, any other text/* subtype
// but HTML and RTF (RFC 2046, 4.1.4: a text subtype a reader does not
// know is text/plain: text/csv, text/markdown, text/calendar, ...), and
// JSON (application/json, application/*+json; RFC 8259).
func PlainText(mt string) bool {
	switch mt {
	case "text/html", "text/rtf":
		return false
	case "application/json":
		return true
	}
	return strings.HasPrefix(mt, "text/") && len(mt) > len("text/") ||
		strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

func sniffHTML(head []byte) bool {
	h := bytes.ToLower(bytes.TrimLeft(head, "\xef\xbb\xbf \t\r\n"))
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body"} {
		if bytes.HasPrefix(h, []byte(p)) {
			return true
		}
	}
	return false
}
