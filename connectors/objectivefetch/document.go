package objectivefetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
)

// Kinds of objects (Identifier.Kind).
const (
	kindFolder   = "folder"
	kindFile     = "file"
	kindDocument = "document"
)

// identifier returns the AUTN_IDENTIFIER of an object; vID names a
// version of a document other than its current one.
func identifier(task, kind, parentID, id, vID string) string {
	return restsync.Identifier{Task: task, Kind: kind, Container: parentID, Item: id, Part: vID}.Encode()
}

// decodeIdentifier reads an identifier of this connector.
func decodeIdentifier(raw string) (restsync.Identifier, error) {
	id, err := restsync.DecodeIdentifier(raw)
	if err != nil {
		return id, err
	}
	switch id.Kind {
	case kindFolder, kindFile, kindDocument:
	default:
		return id, restsync.ErrIdentifier
	}
	if !validID(id.Item) || id.Part != "" && (id.Kind != kindDocument || !validID(id.Part)) {
		return id, restsync.ErrIdentifier
	}
	return id, nil
}

// objectKey is the datastore key of an object's record.
func objectKey(id string) string { return "o\x00" + id }

// objState is what a task keeps about an object beyond restsync.Record.
type objState struct {
	Kind string `json:"k"`
	Path string `json:"p,omitempty"`
	// Own are the object's own permissions (containers: to work out what
	// their children inherit without asking again).
	Own []permission `json:"o,omitempty"`
	// ACL is the hash of the effective permissions it was delivered with.
	ACL string `json:"a,omitempty"`
	// Shape is what of the settings its documents were built with
	// (docShape, containerShape); "" the defaults'. When it changes, the
	// object is delivered again.
	Shape string `json:"sh,omitempty"`
}

// docShape is what of a task's settings shapes a document's documents
// (Versions, IndexCatalogueFields, MaxFileBytes, ExtractText,
// ExtractMaxTextBytes) and the extractor's version when text is
// extracted: "" for the defaults and no version, else the values that are
// not, so that a record written before there was a shape matches a task
// on the defaults and an extractor from before versions.
func docShape(s *settings) string {
	var parts []string
	if s.Versions != VersionsCurrent {
		parts = append(parts, "versions="+s.Versions)
	}
	if sh := fieldsShape(s); sh != "" {
		parts = append(parts, sh)
	}
	parts = restsync.FileShape(parts, s.MaxFileBytes, DefaultMaxFileBytes, s.ExtractText, s.ExtractTextBytes, DefaultExtractTextBytes, extractVersion)
	return strings.Join(parts, ",")
}

// extractVersion is the extractor's version docShape records
// (extract.Version); tests set it to 0 to play a server from before it
// was recorded.
var extractVersion = extract.Version

// fieldsShape is what IndexCatalogueFields makes of an object's shape.
func fieldsShape(s *settings) string {
	if !s.IndexFields {
		return "nofields"
	}
	return ""
}

// containerShape is docShape for folders and files: IndexCatalogueFields,
// and IndexFolders (noDocument: recorded without a document).
func containerShape(s *settings) string {
	sh := fieldsShape(s)
	if !s.IndexFolders {
		if sh != "" {
			sh += ","
		}
		sh += noDocument
	}
	return sh
}

// noDocument is the part of a container's shape that says it was
// recorded without a document (IndexFolders off).
const noDocument = "nodoc"

// hasDocument reports whether a container's record was written with its
// document in the index (IndexFolders on).
func hasDocument(st objState) bool {
	return !slices.Contains(strings.Split(st.Shape, ","), noDocument)
}

// builder turns Objective objects into documents for one task.
type builder struct {
	s    *settings
	base string
	x    *extract.Extractor
}

func newBuilder(s *settings) (*builder, error) {
	x, err := extract.New(extract.Config{Limits: extract.Limits{
		MaxInputBytes: s.MaxFileBytes + 1,
		MaxTextBytes:  int(s.ExtractTextBytes),
		Timeout:       s.ExtractTimeout,
	}})
	if err != nil {
		return nil, err
	}
	return &builder{s: s, base: s.ServerURL, x: x}, nil
}

func objectRef(base, kind, id string) string {
	return base + "/api/resources/" + kind + "s/" + url.PathEscape(id)
}

func versionRef(base, vID string) string {
	return base + "/api/resources/documentversions/" + url.PathEscape(vID)
}

// fields gathers a document's fields, leaving out empty values.
type fields []ingest.Field

func (f *fields) add(name, value string) {
	if value != "" {
		*f = append(*f, ingest.Field{Name: name, Value: value})
	}
}

func (f *fields) time(name, v string) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		f.add(name, strconv.FormatInt(t.Unix(), 10))
	}
}

// fieldName makes a catalogue field's name an IDOL field name:
// CATALOGUE_ and the name in upper case, with _ for what is not a letter
// or digit.
func fieldName(name string) string {
	b := strings.Builder{}
	b.WriteString("CATALOGUE_")
	for _, r := range strings.TrimSpace(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func catalogueValues(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, catalogueValues(e)...)
		}
		return out
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}
	case bool:
		return []string{strconv.FormatBool(x)}
	default:
		return []string{fmt.Sprint(x)}
	}
}

// acls are an object's effective permissions as IDOL's mapped-security
// ACLs (read, browse, write), in the format IDOL documents for its
// Objective connector: E:U:<users>:NU:<denied users>:G:<groups>:NG:<denied
// groups>, E 1 when everyone is granted; names lower case and
// percent-encoded. A privilege denied to the group Everyone is granted to
// no one (a denial wins).
type acls struct{ read, browse, write string }

func aclsOf(perms []permission) acls {
	one := func(privilege string) string {
		var u, nu, g, ng []string
		everyone, noOne := false, false
		for _, p := range perms {
			if !slices.ContainsFunc(p.Privileges, func(x string) bool { return strings.EqualFold(x, privilege) }) {
				continue
			}
			name := restsync.ACLName(p.Principal)
			switch {
			case strings.EqualFold(p.PrincipalType, "group") && strings.EqualFold(p.Principal, "Everyone"):
				// A denial wins: denied to Everyone, the privilege is
				// no one's, whoever else it is granted to.
				everyone = everyone || !p.Deny
				noOne = noOne || p.Deny
			case strings.EqualFold(p.PrincipalType, "group") && p.Deny:
				ng = append(ng, name)
			case strings.EqualFold(p.PrincipalType, "group"):
				g = append(g, name)
			case p.Deny:
				nu = append(nu, name)
			default:
				u = append(u, name)
			}
		}
		for _, l := range [][]string{u, nu, g, ng} {
			slices.Sort(l)
		}
		e := "0"
		if everyone && !noOne {
			e = "1"
		}
		if noOne {
			u, g = nil, nil
		}
		return e + ":U:" + strings.Join(slices.Compact(u), ",") + ":NU:" + strings.Join(slices.Compact(nu), ",") +
			":G:" + strings.Join(slices.Compact(g), ",") + ":NG:" + strings.Join(slices.Compact(ng), ",")
	}
	return acls{read: one("read"), browse: one("browse"), write: one("write")}
}

func (a acls) hash() string {
	h := sha256.Sum256([]byte(a.read + "\n" + a.browse + "\n" + a.write))
	return hex.EncodeToString(h[:8])
}

func (b *builder) security(f *fields, a acls) {
	if b.s.MappedSecurity {
		f.add("AUTONOMYMETADATA", a.read)
		f.add("AUTONOMYMETADATA_BROWSE", a.browse)
		f.add("AUTONOMYMETADATA_WRITE", a.write)
		f.add("SECURITYTYPE", "OBJECTIVEREST")
	}
}

func docName(it *item) string {
	if it.Extension != "" && !strings.HasSuffix(strings.ToLower(it.Name), "."+strings.ToLower(it.Extension)) {
		return it.Name + "." + it.Extension
	}
	return it.Name
}

// common are the fields every object's document has.
func (b *builder) common(f *fields, task string, it *item, path string, cat []catalogueField, a acls, vID string) {
	f.add("AUTN_IDENTIFIER", identifier(task, it.kind(), it.ParentID, it.ID, vID))
	f.add(ingest.FieldTitle, docName(it))
	f.time(ingest.FieldDate, it.DateUpdated)
	f.add("DOCUMENT_KIND", it.kind())
	f.add("OBJECTIVE_ID", it.ID)
	f.add("OBJECTIVE_OBJECT_TYPE", it.ObjectType)
	f.add("PARENT_ID", it.ParentID)
	if it.ParentID != "" {
		f.add("PARENT_REFERENCE", objectRef(b.base, kindOf(it.ParentID), it.ParentID))
	}
	f.add("NAME", it.Name)
	f.add("PATH", path)
	f.time("CREATED", it.DateCreated)
	f.time("UPDATED", it.DateUpdated)
	f.add("ETAG", it.ETag)
	for _, c := range cat {
		for _, v := range catalogueValues(c.Value) {
			f.add(fieldName(c.Name), v)
		}
	}
	b.security(f, a)
}

// kindOf guesses an object's kind from its id (fA folders, qA files).
func kindOf(id string) string {
	switch {
	case strings.HasPrefix(id, "fA"):
		return kindFolder
	case strings.HasPrefix(id, "qA"):
		return kindFile
	}
	return kindDocument
}

// containerDoc is a folder's or file's document.
func (b *builder) containerDoc(task string, it *item, path string, cat []catalogueField, a acls, parts []filePart) *ingest.Document {
	var f fields
	b.common(&f, task, it, path, cat, a, "")
	for _, p := range parts {
		f.add("FILE_PART", p.Name)
	}
	return &ingest.Document{Reference: objectRef(b.base, it.kind(), it.ID), Fields: f}
}

// content is a version's bytes, as fetched.
type content struct {
	file *restsync.File
	v    *version // nil: the current version
}

// documentDoc is a document's (or one of its versions') document.
func (b *builder) documentDoc(ctx context.Context, task string, it *item, path string, cat []catalogueField, a acls, c content) *ingest.Document {
	var f fields
	ref := objectRef(b.base, kindDocument, it.ID)
	vID := ""
	if c.v != nil && c.v.ID != it.CurrentVersionID {
		vID = c.v.ID
		ref = versionRef(b.base, vID)
	}
	b.common(&f, task, it, path, cat, a, vID)
	f.add("EXTENSION", it.Extension)
	f.add("STATE", it.State)
	f.add("REVISION", strconv.Itoa(it.Revision))
	if c.v != nil {
		f.add("VERSION_ID", c.v.ID)
		f.add("VERSION_NUMBER", strconv.Itoa(c.v.VersionNumber))
		f.add("VERSION_LABEL", c.v.VersionLabel)
		f.add("CORPORATE_VALUE", strconv.FormatBool(c.v.CorporateValue))
		f.add("DOC_VERSION_NAME", c.v.DocVersionName)
		f.add("FILE_SIZE", restsync.ContentLength(c.v.FileSize))
		if vID != "" {
			f.add("CURRENT_VERSION_REFERENCE", objectRef(b.base, kindDocument, it.ID))
		}
	} else {
		f.add("VERSION_ID", it.CurrentVersionID)
		f.add("VERSION_NUMBER", strconv.Itoa(it.CurrentVersionNumber))
		f.add("VERSION_LABEL", it.VersionLabel)
		f.add("CORPORATE_VALUE", strconv.FormatBool(it.CorporateValue))
		f.add("DOC_VERSION_NAME", it.DocVersionName)
		f.add("FILE_SIZE", restsync.ContentLength(it.FileSize))
	}
	f.add("FILE_PART_ID", it.FilePartID)
	doc := &ingest.Document{Reference: ref}
	if file := c.file; file != nil {
		f.add("CONTENT_TYPE", file.ContentType)
		doc.SourceType = file.ContentType
		restsync.FileContent(ctx, b.x, b.s.ExtractText, file, docName(it), doc, f.add)
	}
	doc.Fields = f
	return doc
}
