package httpfetch

import (
	"context"
	"fmt"
	"strings"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// View implements fetch.Viewer: it fetches the identifier's page now, with
// its task's settings (user agent, timeout, size and redirect limits,
// robots.txt) after the request's overrides and Config fragment, and
// returns its bytes, media type, a file name and the document's metadata
// fields.
//
// Only pages known to the task's datastore can be viewed, so View cannot
// be used to make the server fetch arbitrary URLs. A garbled identifier, or
// one naming a task that is not configured, is a *messages.ParamError for
// Identifier; an unknown page, or one the site answers 404 or 410 for,
// wraps messages.ErrNotFound; other fetch failures are plain errors.
func (r *Repository) View(ctx context.Context, identifier string, params messages.Params) (*fetch.ViewResult, error) {
	if err := checkFragmentSize(params); err != nil {
		return nil, err
	}
	req, err := r.parseRequest(params, viewParams)
	if err != nil {
		return nil, err
	}
	if len(req.ignored) > 0 {
		r.log.Debug("View: parameters ignored: neither View's own nor task settings", "parameters", strings.Join(req.ignored, ","))
	}
	id, err := DecodeIdentifier(identifier)
	if err != nil {
		return nil, messages.Invalid("Identifier", identifier, err.Error())
	}
	if !r.hasTask(id.Task) {
		return nil, messages.Invalid("Identifier", identifier, fmt.Sprintf("names task %s, which is not configured", id.Task))
	}
	if !isWebURL(id.Reference) {
		return nil, notFound("view %s: not a web page of task %s", id.Reference, id.Task)
	}
	var layers []layer
	s, err := r.settingsFor(id.Task, req, &layers, false)
	if err != nil {
		return nil, err
	}
	names, err := r.st.DatastoreNames()
	if err != nil {
		return nil, fmt.Errorf("httpfetch: view: %w", err)
	}
	if !containsFold(names, id.Task) {
		return nil, notFound("view %s: task %s has not crawled it", id.Reference, id.Task)
	}
	ds, err := r.datastore(id.Task)
	if err != nil {
		return nil, err
	}
	rec, err := getRecord(ds, id.Reference)
	if err != nil {
		return nil, fmt.Errorf("httpfetch: view: %w", err)
	}
	if rec == nil {
		return nil, notFound("view %s: task %s has not crawled it", id.Reference, id.Task)
	}
	tr, err := r.startTask(ctx, s, PurposeView, r.log.With("task", id.Task))
	if err != nil {
		return nil, fmt.Errorf("httpfetch: view %s: task %s: %w", id.Reference, id.Task, err)
	}
	defer tr.end()
	got, err := r.fetchNow(ctx, s, tr, []string{id.Reference})
	if err != nil {
		return nil, fmt.Errorf("httpfetch: view %s: %w", id.Reference, err)
	}
	f := got[id.Reference]
	switch {
	case f.err != nil && gone(f.err):
		return nil, notFound("view %s: %v", id.Reference, f.err)
	case f.err != nil:
		return nil, fmt.Errorf("httpfetch: view %s: %w", id.Reference, f.err)
	}
	pg := f.page
	pg.Depth, pg.Parent = rec.Depth, rec.Parent
	doc := tr.document(id.Task, pg, rec.Extra)
	meta := make([]*messages.Param, 0, len(doc.Fields))
	for _, fl := range doc.Fields {
		meta = append(meta, &messages.Param{Name: fl.Name, Value: fl.Value})
	}
	mt := pg.Header.Get("Content-Type")
	if mt == "" {
		mt = pg.MediaType
	}
	content := pg.Body
	if tr.View != nil {
		if c, m, ok := tr.View(pg); ok {
			content, mt = c, m
		}
	}
	return &fetch.ViewResult{
		Reference: pg.FinalURL,
		MimeType:  mt,
		FileName:  fileName(pg.FinalURL, pg.MediaType),
		Content:   content,
		Metadata:  meta,
	}, nil
}
