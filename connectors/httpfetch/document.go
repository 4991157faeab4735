package httpfetch

import (
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
)

// Document fields (doc.go lists them with their meaning).
const (
	FieldIdentifier     = "AUTN_IDENTIFIER"
	FieldURL            = "URL"
	FieldRedirectedFrom = "REDIRECTED_FROM"
	FieldContentType    = "CONTENT_TYPE"
	FieldSize           = "SIZE"
	FieldLastModified   = "LAST_MODIFIED"
	FieldETag           = "ETAG"
	FieldDepth          = "DEPTH"
	FieldParentURL      = "PARENT_URL"
	FieldFetchTime      = "FETCH_TIME"
	FieldLanguage       = "LANGUAGE"
	FieldCanonicalURL   = "CANONICAL_URL"
	FieldMetaPrefix     = "META_"
	FieldFileName       = "DREFILENAME"
	FieldCollectTime    = "AUTN_COLLECTTIME"
)

// pageDocument builds the document of a fetched page (status 200).
// extra (Update's metadata) is appended last.
func pageDocument(task string, p *crawl.Page, extra []ingest.Field) *ingest.Document {
	ref := p.FinalURL
	d := &ingest.Document{Reference: ref}
	add := func(name, value string) {
		if value != "" {
			d.Fields = append(d.Fields, ingest.Field{Name: name, Value: value})
		}
	}
	add(FieldIdentifier, EncodeIdentifier(task, ref))
	add(ingest.FieldTitle, pageTitle(p.Title, ref))
	date := p.FetchedAt
	if lm, err := http.ParseTime(p.Header.Get("Last-Modified")); err == nil {
		date = lm
	}
	if !date.IsZero() {
		add(ingest.FieldDate, strconv.FormatInt(date.Unix(), 10))
	}
	add(FieldURL, ref)
	if p.URL != ref {
		add(FieldRedirectedFrom, p.URL)
	}
	ct := p.Header.Get("Content-Type")
	if ct == "" {
		ct = p.MediaType
	}
	add(FieldContentType, ct)
	add(FieldSize, strconv.Itoa(len(p.Body)))
	add(FieldLastModified, p.Header.Get("Last-Modified"))
	add(FieldETag, p.Header.Get("ETag"))
	add(FieldDepth, strconv.Itoa(p.Depth))
	add(FieldParentURL, p.Parent)
	if !p.FetchedAt.IsZero() {
		add(FieldFetchTime, strconv.FormatInt(p.FetchedAt.Unix(), 10))
	}
	add(FieldLanguage, p.Lang)
	add(FieldCanonicalURL, p.CanonicalURL)
	d.Fields = appendMeta(d.Fields, p.Meta)
	d.Fields = append(d.Fields, extra...)
	switch {
	case htmlType(p.MediaType):
		d.Content = p.Text
	case extract.PlainText(p.MediaType): // text/plain, text/csv, JSON, ...
		d.Content = extract.DecodeText(p.Body, ct)
	default:
		d.Source, d.SourceType = p.KeepBody(), p.MediaType // delivered after OnPage returns
	}
	return d
}

// appendMeta adds the page's <meta> elements as META_<NAME> fields, in
// name order (values of one name in document order). NAME is the meta
// name, http-equiv or property upper-cased, with every character other
// than A-Z, 0-9 and '_' replaced by '_' ("og:title" gives META_OG_TITLE).
func appendMeta(fields []ingest.Field, meta map[string][]string) []ingest.Field {
	names := make([]string, 0, len(meta))
	for n := range meta {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		field := metaFieldName(n)
		if field == "" {
			continue
		}
		for _, v := range meta[n] {
			if v != "" {
				fields = append(fields, ingest.Field{Name: field, Value: v})
			}
		}
	}
	return fields
}

func metaFieldName(name string) string {
	var b strings.Builder
	b.WriteString(FieldMetaPrefix)
	letters := false
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
			letters = true
		} else {
			b.WriteByte('_')
		}
	}
	if !letters {
		return ""
	}
	return b.String()
}

// pageTitle is the HTML title, else the last path segment of the URL
// (unescaped), else its host.
func pageTitle(title, ref string) string {
	if t := strings.TrimSpace(title); t != "" {
		return t
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	if base := path.Base(u.Path); base != "/" && base != "." && base != "" {
		return base
	}
	return u.Host
}

// fileName is the name a Collect or View gives an item: the last path
// segment of its URL (cut to maxFileName bytes, keeping its extension),
// or "index" plus an extension for the media type.
func fileName(ref, mediaType string) string {
	name := ""
	if u, err := url.Parse(ref); err == nil {
		if b := path.Base(u.Path); b != "/" && b != "." {
			name = b
		}
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == ".." {
		name = "index"
		if exts, _ := mime.ExtensionsByType(mediaType); len(exts) > 0 {
			name += preferredExt(mediaType, exts)
		}
	}
	return cutName(name, maxFileName)
}

// maxFileName bounds the bytes of a name fileName returns, so that a
// Collect's "<12 hex digits>_<name>.idx" fits the 255 bytes a file
// system allows a name.
const maxFileName = 200

// cutName cuts name to at most max bytes, keeping an extension of up to
// 16 bytes and whole UTF-8 sequences.
func cutName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	ext := path.Ext(name)
	if len(ext) > 16 {
		ext = ""
	}
	stem := strings.ToValidUTF8(name[:max-len(ext)], "")
	return stem + ext
}

func preferredExt(mediaType string, exts []string) string {
	switch mediaType {
	case "text/html":
		return ".html"
	case "text/plain":
		return ".txt"
	}
	return exts[0]
}

func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
