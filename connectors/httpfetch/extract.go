package httpfetch

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/secret"
)

// Fields added from text extraction (doc.go lists them).
const (
	FieldAuthor           = "AUTHOR"
	FieldSubject          = "SUBJECT"
	FieldKeywords         = "KEYWORDS"
	FieldDescription      = "DESCRIPTION"
	FieldPageCount        = "PAGE_COUNT"
	FieldCreatedDate      = "CREATED_DATE"
	FieldModifiedDate     = "MODIFIED_DATE"
	FieldExtractFormat    = "EXTRACT_FORMAT"
	FieldExtractTruncated = "EXTRACT_TRUNCATED"
	FieldExtractError     = "EXTRACT_ERROR"
)

// extractor returns the task's extractor, or nil when extraction is off.
// extractShape is what of the settings shapes the text extracted from a
// file (ExtractText, ExtractFormats, ExtractMaxTextBytes,
// ExtractMaxPages): "" for the defaults, else the values that are not, so
// that a record written before there was one matches a task on the
// defaults (record.Extract).
func (s *settings) extractShape() string {
	if !s.ExtractText || len(s.ExtractFormats) == 0 {
		return "off"
	}
	var parts []string
	if !slices.Equal(s.ExtractFormats, extract.Formats) {
		fs := make([]string, len(s.ExtractFormats))
		for i, f := range s.ExtractFormats {
			fs[i] = string(f)
		}
		slices.Sort(fs)
		parts = append(parts, "formats="+strings.Join(fs, "+"))
	}
	if s.ExtractMaxTextBytes != DefaultExtractMaxTextBytes {
		parts = append(parts, "text="+strconv.Itoa(s.ExtractMaxTextBytes))
	}
	if s.ExtractMaxPages != DefaultExtractMaxPages {
		parts = append(parts, "pages="+strconv.Itoa(s.ExtractMaxPages))
	}
	return strings.Join(parts, ",")
}

// textType reports whether a page of this media type is a document whose
// text the crawl reads itself (HTML, plain text: any text/* type but RTF,
// and JSON, extract.PlainText), not extracted.
func textType(mediaType string) bool {
	return htmlType(mediaType) || extract.PlainText(mediaType)
}

// htmlType reports whether a page of this media type is HTML, whose text
// the crawl's parse (or, for the Web connector, the browser) gives, not
// package extract.
func htmlType(mediaType string) bool {
	return mediaType == "text/html" || mediaType == "application/xhtml+xml"
}

// extractStale reports whether rec is of a document delivered by another
// extractor (extract.Version: plain-text pages too, whose text
// extract.DecodeText reads, but not HTML pages, whose text does not come
// from the package: delivering them again would crawl the whole site
// again for nothing), or of a file delivered with other extraction
// settings than the task's now: it is fetched in full and delivered again.
// A page the target does not hold (excluded, noindex, never delivered) is
// none: there is no document to deliver again (and an excluded file's
// record has no extraction settings, which is not a change of them).
func (s *settings) extractStale(rec *record) bool {
	if rec.MediaType == "" || rec.Delivered == nil {
		return false
	}
	if rec.XV != extract.Version && !htmlType(rec.MediaType) {
		return true
	}
	return !textType(rec.MediaType) && rec.Extract != s.extractShape()
}

func (s *settings) extractor() *extract.Extractor {
	if !s.ExtractText || len(s.ExtractFormats) == 0 {
		return nil
	}
	x, err := extract.New(extract.Config{Formats: s.ExtractFormats, Limits: extract.Limits{
		MaxInputBytes:  s.MaxPageBytes,
		MaxTextBytes:   s.ExtractMaxTextBytes,
		Timeout:        s.ExtractTimeout,
		MaxMemoryBytes: s.ExtractMaxMemoryBytes,
		MaxPages:       s.ExtractMaxPages,
	}})
	if err != nil { // formats were validated with the settings
		return nil
	}
	return x
}

// needsExtraction reports whether a page's document gets its text from
// the extractor: a format it handles other than HTML and plain text, whose
// text the crawl (HTML) or pageDocument (text) already has.
func needsExtraction(x *extract.Extractor, p *crawl.Page) bool {
	if x == nil || p.NotModified || textType(p.MediaType) {
		return false
	}
	f := extract.Detect(extract.Input{Data: p.Body, ContentType: p.Header.Get("Content-Type"), Name: p.FinalURL})
	return f != "" && f != extract.HTML && f != extract.Text && x.Handles(f)
}

// extractInto extracts the page's text into d (Content and the fields
// above). A failure is returned after EXTRACT_ERROR has been added: the
// document is still delivered, with its metadata and source bytes.
func extractInto(ctx context.Context, x *extract.Extractor, p *crawl.Page, d *ingest.Document) (string, error) {
	doc, err := x.Extract(ctx, extract.Input{Data: p.Body, ContentType: p.Header.Get("Content-Type"), Name: p.FinalURL})
	if err != nil {
		if ctx.Err() == nil {
			d.Fields = append(d.Fields, ingest.Field{Name: FieldExtractError, Value: err.Error()})
		}
		return "", err
	}
	d.Content = doc.Text
	title := ""
	if p.Title == "" && doc.Title != "" {
		title = doc.Title
	}
	addExtracted(d, doc, title != "")
	return title, nil
}

// htmlAndText extracts HTML and plain text only: what Insert does when
// ExtractText is off.
var htmlAndText = func() *extract.Extractor {
	x, err := extract.New(extract.Config{Formats: []extract.Format{extract.HTML, extract.Text}})
	if err != nil {
		panic(err)
	}
	return x
}()

// addExtracted adds the extracted metadata to d; setTitle replaces
// DRETITLE (or adds it) with the document's title.
func addExtracted(d *ingest.Document, doc *extract.Document, setTitle bool) {
	if setTitle && doc.Title != "" {
		found := false
		for i := range d.Fields {
			if d.Fields[i].Name == ingest.FieldTitle {
				d.Fields[i].Value, found = doc.Title, true
			}
		}
		if !found {
			d.Fields = append(d.Fields, ingest.Field{Name: ingest.FieldTitle, Value: doc.Title})
		}
	}
	add := func(name, value string) {
		if value != "" {
			d.Fields = append(d.Fields, ingest.Field{Name: name, Value: value})
		}
	}
	add(FieldAuthor, doc.Author)
	add(FieldSubject, doc.Subject)
	add(FieldKeywords, doc.Keywords)
	add(FieldDescription, doc.Description)
	if doc.Pages > 0 {
		add(FieldPageCount, strconv.Itoa(doc.Pages))
	}
	if !doc.Created.IsZero() {
		add(FieldCreatedDate, unixString(doc.Created))
	}
	if !doc.Modified.IsZero() {
		add(FieldModifiedDate, unixString(doc.Modified))
	}
	if doc.Language != "" && !hasField(d.Fields, FieldLanguage) {
		add(FieldLanguage, doc.Language)
	}
	add(FieldExtractFormat, string(doc.Format))
	if doc.Truncated {
		add(FieldExtractTruncated, "true")
	}
}

func hasField(fs []ingest.Field, name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return true
		}
	}
	return false
}

// extractStage runs the extraction of a Synchronize's documents off the
// crawl's fetch workers: a page that needs it is handed to one of
// ExtractThreads goroutines through a queue of that many slots, and the
// extracted change goes on to the flusher. A fetch worker waits only for
// a free slot (that bounds the bodies held in memory), never for an
// extraction.
type extractStage struct {
	sr   *syncRun
	x    *extract.Extractor
	jobs chan extractJob
	wg   sync.WaitGroup
}

type extractJob struct {
	c *change
	p *crawl.Page
}

func newExtractStage(sr *syncRun, x *extract.Extractor, threads int) *extractStage {
	st := &extractStage{sr: sr, x: x, jobs: make(chan extractJob, threads)}
	for range threads {
		st.wg.Go(st.work)
	}
	return st
}

func (st *extractStage) work() {
	sr := st.sr
	for j := range st.jobs {
		if sr.ctx.Err() != nil {
			continue // stopped: dropped like every change not yet in a batch
		}
		title, err := extractInto(sr.ctx, st.x, j.p, j.c.doc)
		switch {
		case sr.ctx.Err() != nil:
			continue
		case err != nil:
			sr.counts.Errors.Add(1)
			sr.log.Warn("text extraction failed; the document is delivered without text", "url", secret.LogURL(j.c.key), "error", err)
		case title != "":
			j.c.rec.Title = title
		}
		sr.queue(j.c)
	}
}

// submit hands c (whose page p needs extraction) to the stage.
func (st *extractStage) submit(c *change, p *crawl.Page) {
	select {
	case st.jobs <- extractJob{c, p}:
	case <-st.sr.dead:
	case <-st.sr.ctx.Done():
	}
}

// close waits for the extractions under way; no submit may follow.
func (st *extractStage) close() {
	close(st.jobs)
	st.wg.Wait()
}

// documentNow builds a page's document and extracts its text at once (the
// actions that fetch a page on request: Update, Synchronize with
// Identifiers, View). A failure is counted by the caller.
func documentNow(ctx context.Context, x *extract.Extractor, tr *TaskRun, task string, p *crawl.Page, extra []ingest.Field) (*ingest.Document, error) {
	d := tr.document(task, p, extra)
	if !needsExtraction(x, p) {
		return d, nil
	}
	_, err := extractInto(ctx, x, p, d)
	if err != nil && errors.Is(err, context.Canceled) {
		return d, err
	}
	return d, err
}
