package objectivefetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
)

func jsonUnmarshal(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("objectivefetch: "+format+": %w", append(args, messages.ErrNotFound)...)
}

// knownRecord returns the record of an identified object when the task
// has indexed it.
func (r *Repository) knownRecord(id restsync.Identifier) (*restsync.Record, error) {
	names, err := r.st.DatastoreNames()
	if err != nil {
		return nil, err
	}
	found := false
	for _, n := range names {
		found = found || n == id.Task
	}
	if !found {
		return nil, nil
	}
	ds, err := r.datastore(id.Task)
	if err != nil {
		return nil, err
	}
	rec, err := restsync.GetRecord(ds, objectKey(id.Item))
	if err != nil || rec == nil || id.Part == "" {
		return rec, err
	}
	for _, k := range rec.Kids {
		if strings.HasSuffix(k, "/documentversions/"+id.Part) {
			return rec, nil
		}
	}
	return nil, nil
}

// fetched is an object fetched now for View and Collect.
type fetched struct {
	ref, mime, name string
	content         []byte
	doc             *ingest.Document
}

func (r *Repository) fetchObject(ctx context.Context, a *api, id restsync.Identifier, rec *restsync.Record) (*fetched, error) {
	s := r.set[id.Task]
	b, err := newBuilder(s)
	if err != nil {
		return nil, err
	}
	it, err := a.object(ctx, id.Kind, id.Item)
	if err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("%s %s is gone", id.Kind, id.Item)
		}
		return nil, err
	}
	var st objState
	_ = jsonUnmarshal(rec.Extra, &st)
	var cat []catalogueField
	if s.IndexFields {
		if cat, err = a.fields(ctx, id.Kind, id.Item); err != nil {
			return nil, err
		}
	}
	var perms []permission
	if s.MappedSecurity {
		if perms, err = a.permissions(ctx, id.Kind, id.Item); err != nil {
			return nil, err
		}
	}
	acl := aclsOf(perms)
	if len(perms) == 0 {
		acl = acls{} // inherited: what Synchronize delivered says it
	}
	if id.Kind != kindDocument {
		doc := b.containerDoc(id.Task, it, st.Path, cat, acl, nil)
		var text bytes.Buffer
		fmt.Fprintln(&text, st.Path)
		return &fetched{ref: doc.Reference, mime: "text/plain; charset=utf-8", name: restsync.SafeName(it.Name) + ".txt", content: text.Bytes(), doc: doc}, nil
	}
	c := content{}
	if id.Part != "" {
		vs, err := a.versions(ctx, id.Item)
		if err != nil {
			return nil, err
		}
		for i := range vs {
			if vs[i].ID == id.Part {
				c.v = &vs[i]
			}
		}
		if c.v == nil {
			return nil, notFound("document %s has no version %s", id.Item, id.Part)
		}
	}
	if c.file, err = a.content(ctx, id.Item, id.Part, s.MaxFileBytes); err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("the content of %s is gone", id.Item)
		}
		return nil, err
	}
	if c.file.TooLarge {
		return nil, fmt.Errorf("objectivefetch: %s is larger than MaxFileBytes (%d bytes)", id.Item, s.MaxFileBytes)
	}
	doc := b.documentDoc(ctx, id.Task, it, st.Path, cat, acl, c)
	ct := c.file.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	name := c.file.FileName
	if name == "" {
		name = docName(it)
	}
	return &fetched{ref: doc.Reference, mime: ct, name: restsync.SafeName(name), content: c.file.Data, doc: doc}, nil
}

func (r *Repository) checkID(raw string) (restsync.Identifier, error) {
	id, err := decodeIdentifier(raw)
	if err != nil {
		return id, messages.Invalid("Identifier", raw, err.Error())
	}
	if !r.hasTask(id.Task) {
		return id, messages.Invalid("Identifier", raw, "names task "+id.Task+", which is not configured")
	}
	return id, nil
}

// View implements fetch.Viewer: a document's (or version's) content, or a
// container's path, fetched now, with the document's fields as metadata.
// Only objects the task indexed can be viewed.
func (r *Repository) View(ctx context.Context, identifier string, _ messages.Params) (*fetch.ViewResult, error) {
	id, err := r.checkID(identifier)
	if err != nil {
		return nil, err
	}
	rec, err := r.knownRecord(id)
	if err != nil {
		return nil, fmt.Errorf("objectivefetch: view: %w", err)
	}
	if rec == nil {
		return nil, notFound("view: task %s has not indexed %s %s", id.Task, id.Kind, id.Item)
	}
	a, err := r.open(ctx, r.set[id.Task])
	if err != nil {
		return nil, err
	}
	f, err := r.fetchObject(ctx, a, id, rec)
	if err != nil {
		return nil, err
	}
	meta := make([]*messages.Param, 0, len(f.doc.Fields))
	for _, fl := range f.doc.Fields {
		meta = append(meta, &messages.Param{Name: fl.Name, Value: fl.Value})
	}
	return &fetch.ViewResult{Reference: f.ref, MimeType: f.mime, FileName: f.name, Content: f.content, Metadata: meta}, nil
}

// collect fetches each identified object now and writes it to Destination
// with an IDX file of its document beside it.
func (r *Repository) collect(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	c, err := restsync.OpenCollector(req.Destination)
	if err != nil {
		return nil, fmt.Errorf("objectivefetch: %w", err)
	}
	defer c.Close()
	for _, task := range req.Tasks {
		ds, err := r.datastore(task)
		if err != nil {
			return nil, err
		}
		done := restsync.NoteAction(ds, restsync.ActionCollect, r.now, r.log)
		cnt := restsync.Counts(job, task)
		var a *api
		for _, e := range req.IDs {
			if e.Task != task {
				continue
			}
			if err := job.Checkpoint(ctx); err != nil {
				done()
				return o.Elements(), err
			}
			id, _ := decodeIdentifier(e.Raw)
			rec, err := r.knownRecord(id)
			if err != nil {
				done()
				return o.Elements(), err
			}
			if rec == nil {
				o.Failure(e.Raw, "the task has not indexed this "+id.Kind)
				continue
			}
			if a == nil {
				if a, err = r.open(ctx, r.set[task]); err != nil {
					done()
					return o.Elements(), err
				}
			}
			f, err := r.fetchObject(ctx, a, id, rec)
			if err == nil {
				_, err = c.Write(f.name, f.content, f.doc, r.now())
			}
			if err != nil {
				if fatal(ctx, err) {
					done()
					return o.Elements(), err
				}
				o.Failure(e.Raw, err.Error())
				cnt.Errors.Add(1)
				continue
			}
			cnt.Collected.Add(1)
			o.Success(e.Raw)
		}
		done()
	}
	return o.Elements(), nil
}

// identifiers lists the objects a task has indexed, with their names.
func (r *Repository) identifiers(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	ds, err := r.datastore(task)
	if err != nil {
		return nil, err
	}
	defer restsync.NoteAction(ds, restsync.ActionIdentifiers, r.now, r.log)()
	cnt := restsync.Counts(job, task)
	g := &messages.Element{Name: "identifiers", List: true, Attrs: []*messages.Param{{Name: "parent_identifier", Value: "ROOT"}}}
	n := 0
	err = restsync.EachRecord(ds, "o\x00", func(key string, rec *restsync.Record) error {
		if n++; n%256 == 0 {
			if err := job.Checkpoint(ctx); err != nil {
				return err
			}
		}
		var st objState
		_ = jsonUnmarshal(rec.Extra, &st)
		id := strings.TrimPrefix(key, "o\x00")
		typ := map[string]string{kindFolder: "Objective Folder", kindFile: "Objective File", kindDocument: "Objective Document"}[st.Kind]
		attrs := "folder"
		if st.Kind == kindDocument {
			attrs = "document"
		}
		name := rec.Title
		if name == "" {
			name = id
		}
		g.Children = append(g.Children, &messages.Element{Name: "identifier", List: true, Text: identifier(task, st.Kind, rec.Parent, id, ""),
			Attrs: []*messages.Param{{Name: "name", Value: name}, {Name: "type", Value: typ}, {Name: "attributes", Value: attrs}}})
		cnt.Seen.Add(1)
		return nil
	})
	return []*messages.Element{g}, err
}

// delete deletes documents in Objective, then removes their documents
// from the target and forgets them.
func (r *Repository) delete(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	for _, task := range req.Tasks {
		ds, err := r.datastore(task)
		if err != nil {
			return o.Elements(), err
		}
		done := restsync.NoteAction(ds, restsync.ActionDelete, r.now, r.log)
		cnt := restsync.Counts(job, task)
		a, err := r.open(ctx, r.set[task])
		if err != nil {
			done()
			return o.Elements(), err
		}
		b := &restsync.Batch{DS: ds, Target: r.target, Counts: cnt, Log: r.log}
		for _, e := range req.IDs {
			if e.Task != task {
				continue
			}
			if err := job.Checkpoint(ctx); err != nil {
				done()
				return o.Elements(), err
			}
			id, _ := decodeIdentifier(e.Raw)
			err := a.delete(ctx, kindDocument, id.Item)
			if err != nil && !errors.Is(err, messages.ErrNotFound) {
				if fatal(ctx, err) {
					done()
					return o.Elements(), err
				}
				o.Failure(e.Raw, err.Error())
				cnt.Errors.Add(1)
				continue
			}
			rec, err := restsync.GetRecord(ds, objectKey(id.Item))
			if err != nil {
				done()
				return o.Elements(), err
			}
			if rec != nil {
				b.Forget(objectKey(id.Item), rec)
			}
			o.Success(e.Raw)
		}
		err = b.Flush(ctx)
		done()
		if err != nil {
			return o.Elements(), err
		}
	}
	return o.Elements(), nil
}

// insertDoc is one document of InsertXML.
type insertDoc struct {
	*restsync.InsertDoc
	// folders are the PATH's folder names, from the top-level folder.
	folders []string
	name    string
	objType string
}

// parseInserts reads InsertXML as IDOL's Objective connector documents
// it: each <insert> has the property PATH (required: the file's path in
// Objective, names from the top-level folder fA0, which it may start
// with) and may have FOLDER_OBJECT_TYPE
// (the object type of the folders Insert creates; default the task's
// FolderObjectType, dotdA12); its <file> is the content (content: base64,
// drecontent: text, file: a path inside [Security] InsertFolders).
func (r *Repository) parseInserts(v string, s *settings) ([]*insertDoc, error) {
	docs, err := restsync.ParseInsertXML(v)
	if err != nil {
		return nil, err
	}
	var out []*insertDoc
	for _, d := range docs {
		p := strings.TrimSpace(d.Property("PATH"))
		if p == "" {
			return nil, messages.Invalid("InsertXML", d.Reference, "an <insert> has no PATH property: the document's path in Objective, such as /Objective Global Folder/Home/user1/newfile.txt")
		}
		parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
		for _, x := range parts {
			if x == "" || x == "." || x == ".." {
				return nil, messages.Invalid("InsertXML", p, "PATH must name a document under a folder")
			}
		}
		if len(parts) < 2 {
			return nil, messages.Invalid("InsertXML", p, "PATH must name a document under a folder")
		}
		if d.File == nil {
			return nil, messages.Invalid("InsertXML", p, "an <insert> has no <file> with the document's content")
		}
		if d.File.Type == "file" {
			f, _, err := restsync.OpenInsertFile(r.cfg.Security.InsertFolders, d.File.Path)
			if err != nil {
				return nil, messages.Invalid("InsertXML", d.File.Path, err.Error())
			}
			f.Close()
		}
		ot := strings.TrimSpace(d.Property("FOLDER_OBJECT_TYPE"))
		if ot == "" {
			ot = s.FolderObjectType
		}
		out = append(out, &insertDoc{InsertDoc: d, folders: parts[:len(parts)-1], name: parts[len(parts)-1], objType: ot})
	}
	return out, nil
}

// insert creates each document at its PATH, creating the folders that are
// missing (with FOLDER_OBJECT_TYPE); a document that exists there gets a
// new version. Each comes back in <identifiers> (with its insert_id) and
// is indexed by the next Synchronize.
func (r *Repository) insert(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	s := r.set[task]
	ds, err := r.datastore(task)
	if err != nil {
		return nil, err
	}
	defer restsync.NoteAction(ds, restsync.ActionInsert, r.now, r.log)()
	cnt := restsync.Counts(job, task)
	o := &restsync.Outcome{}
	a, err := r.open(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, d := range req.inserts {
		if err := job.Checkpoint(ctx); err != nil {
			return o.Elements(), err
		}
		it, err := r.insertOne(ctx, a, s, d)
		if err != nil {
			if fatal(ctx, err) {
				return o.Elements(), err
			}
			o.Failure(d.Property("PATH"), err.Error())
			cnt.Errors.Add(1)
			continue
		}
		id := identifier(task, kindDocument, it.ParentID, it.ID, "")
		cnt.Inserted.Add(1)
		o.Success(id)
		o.Inserted = append(o.Inserted, restsync.Inserted{ID: id, InsertID: d.InsertID})
	}
	return o.Elements(), nil
}

func (r *Repository) insertOne(ctx context.Context, a *api, s *settings, d *insertDoc) (*item, error) {
	parent, err := a.object(ctx, kindFolder, "fA0")
	if err != nil {
		return nil, err
	}
	find := func(in *item, name string, doc bool) (*item, error) {
		var found *item
		err := a.children(ctx, in.kind(), in.ID, func(page []item) error {
			for i := range page {
				p := &page[i]
				if found == nil && (p.kind() == kindDocument) == doc && (p.Name == name || doc && docName(p) == name) {
					found = p
				}
			}
			return nil
		})
		return found, err
	}
	for i, name := range d.folders {
		if i == 0 && name == parent.Name {
			continue // a path may start with fA0's own name
		}
		next, err := find(parent, name, false)
		if err != nil {
			return nil, err
		}
		if next == nil {
			if parent.kind() != kindFolder {
				return nil, fmt.Errorf("cannot create folder %q inside the Objective file %q", name, parent.Name)
			}
			if next, err = a.createFolder(ctx, parent.ID, name, d.objType); err != nil {
				return nil, err
			}
		}
		parent = next
	}
	up := upload{name: d.name}
	switch d.File.Type {
	case "file":
		f, size, err := restsync.OpenInsertFile(r.cfg.Security.InsertFolders, d.File.Path)
		if err != nil {
			return nil, err
		}
		f.Close()
		up.size = size
		up.open = func() (io.ReadCloser, error) {
			f, _, err := restsync.OpenInsertFile(r.cfg.Security.InsertFolders, d.File.Path)
			return f, err
		}
	default:
		data := d.File.Data
		up.size = int64(len(data))
		up.open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	existing, err := find(parent, d.name, true)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		it, err := a.createDocument(ctx, "", existing.ID, d.name, up)
		if err == nil && it.ID == "" {
			it = existing
		}
		return it, err
	}
	return a.createDocument(ctx, parent.ID, "", d.name, up)
}
