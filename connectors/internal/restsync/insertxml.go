package restsync

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
)

// InsertDoc is one <insert> of InsertXML (connectors' common form:
// <insert><reference/><property name value/>*<metadata name value/>*
// <file><type/><displayname/><content/></file><insert_id/></insert>; the
// <insert> wrapper may be left out for one document).
type InsertDoc struct {
	Reference  string
	InsertID   string
	Properties map[string]string // by upper-case name
	Metadata   []ingest.Field
	File       *InsertFile
}

// Property returns a property (case-insensitive name), "" when absent.
func (d *InsertDoc) Property(name string) string { return d.Properties[strings.ToUpper(name)] }

// InsertFile is an <insert>'s <file>.
type InsertFile struct {
	// Type is content (base64 <content>), drecontent (text <content>) or
	// file (<content> is a path inside [Security] InsertFolders).
	Type        string
	DisplayName string
	// Data is the content of content and drecontent files.
	Data []byte
	// Path is the file of a file file.
	Path string
}

// ParseInsertXML reads InsertXML: an element holding <insert> elements,
// or one document given directly; each top-level element is read, so
// that <insert> elements may also be given one after the other. Each
// <file> must be of one of the types InsertFile lists; base64 is checked
// here, a path only when opened.
func ParseInsertXML(v string) ([]*InsertDoc, error) {
	const name = "InsertXML"
	type prop struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	type file struct {
		Type        string `xml:"type"`
		DisplayName string `xml:"displayname"`
		Content     string `xml:"content"`
	}
	type ins struct {
		Reference  string `xml:"reference"`
		InsertID   string `xml:"insert_id"`
		Properties []prop `xml:"property"`
		Metadata   []prop `xml:"metadata"`
		File       *file  `xml:"file"`
	}
	type top struct {
		Inserts []ins `xml:"insert"`
		ins
	}
	tops, err := DecodeEach[top](v)
	if err != nil {
		return nil, messages.Invalid(name, Shorten(v), "not well-formed XML: "+err.Error())
	}
	var list []ins
	for _, doc := range tops {
		list = append(list, doc.Inserts...)
		if len(doc.Inserts) == 0 && (doc.File != nil || len(doc.Properties) > 0 || len(doc.Metadata) > 0) {
			list = append(list, doc.ins)
		}
	}
	if len(list) == 0 {
		return nil, messages.Invalid(name, Shorten(v), "has no <insert>")
	}
	var out []*InsertDoc
	for _, in := range list {
		d := &InsertDoc{Reference: strings.TrimSpace(in.Reference), InsertID: strings.TrimSpace(in.InsertID), Properties: map[string]string{}}
		for _, p := range in.Properties {
			d.Properties[strings.ToUpper(strings.TrimSpace(p.Name))] = p.Value
		}
		for _, m := range in.Metadata {
			if n := strings.TrimSpace(m.Name); n != "" {
				d.Metadata = append(d.Metadata, ingest.Field{Name: n, Value: m.Value})
			}
		}
		if in.File != nil {
			f := &InsertFile{Type: strings.ToLower(strings.TrimSpace(in.File.Type)), DisplayName: strings.TrimSpace(in.File.DisplayName)}
			switch f.Type {
			case "content":
				data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(in.File.Content), ""))
				if err != nil {
					return nil, messages.Invalid(name, Shorten(in.File.Content), "<file><type>content</type> needs base64 <content>: "+err.Error())
				}
				f.Data = data
			case "drecontent":
				f.Data = []byte(in.File.Content)
			case "file":
				f.Path = strings.TrimSpace(in.File.Content)
				if f.Path == "" {
					return nil, messages.Invalid(name, "", "<file><type>file</type> needs the file's path in <content>")
				}
			default:
				return nil, messages.Invalid(name, in.File.Type, "<file><type> must be content, drecontent or file")
			}
			d.File = f
		}
		out = append(out, d)
	}
	return out, nil
}

// DecodeEach decodes each top-level element of v into a T of its own, as
// every connector's InsertXML is read: <insert> elements given one after
// the other, without an element around them, are each an insert
// (decoding v once read its first element only, and an Insert dropped
// the others and succeeded without them). XML that is not well-formed
// after the first element is an error, as before it.
func DecodeEach[T any](v string) ([]T, error) {
	dec := xml.NewDecoder(strings.NewReader(v))
	var out []T
	for {
		var t T
		err := dec.Decode(&t)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
}

// Shorten cuts a parameter value for an error message.
func Shorten(v string) string {
	if len(v) > 120 {
		return strings.ToValidUTF8(v[:120], "") + "…"
	}
	return v
}

// ErrInsertFile: a <file> path is not inside [Security] InsertFolders or
// cannot be read.
var ErrInsertFile = errors.New("the file is not in a folder that [Security] InsertFolders allows, or cannot be read")

// OpenInsertFile opens a <type>file</type> path, which must be a regular
// file inside one of folders (read through os.Root, so a symbolic link
// cannot lead out). The caller closes the file.
func OpenInsertFile(folders []string, p string) (*os.File, int64, error) {
	if !filepath.IsAbs(p) || strings.ContainsRune(p, 0) {
		return nil, 0, ErrInsertFile
	}
	for _, folder := range folders {
		abs, err := filepath.Abs(folder)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(abs, filepath.Clean(p))
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		root, err := os.OpenRoot(abs)
		if err != nil {
			continue
		}
		f, err := root.Open(rel)
		root.Close()
		if err != nil {
			return nil, 0, ErrInsertFile
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, 0, ErrInsertFile
		}
		return f, st.Size(), nil
	}
	return nil, 0, ErrInsertFile
}

// ReadInsertFile reads a <file>'s content, at most limit bytes (a larger
// one is refused without being read).
func ReadInsertFile(folders []string, f *InsertFile, limit int64) ([]byte, error) {
	if f.Type != "file" {
		if int64(len(f.Data)) > limit {
			return nil, fmt.Errorf("the content is larger than the limit (%d bytes)", limit)
		}
		return f.Data, nil
	}
	file, size, err := OpenInsertFile(folders, f.Path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if size > limit {
		return nil, fmt.Errorf("%s is larger than the limit (%d bytes)", f.Path, limit)
	}
	data, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, ErrInsertFile
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than the limit (%d bytes)", f.Path, limit)
	}
	return data, nil
}
