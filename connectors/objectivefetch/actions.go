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

// items are the objects Collect and View fetch.
func (r *Repository) items() restsync.ItemSource {
	return restsync.ItemSource{Known: r.known, Fetch: r.fetchObject, Fatal: fatal}
}

// known reports whether the task indexed an identified object (a version:
// among its document's).
func (r *Repository) known(id restsync.Identifier) (bool, error) {
	rec, err := r.Record(id.Task, objectKey(id.Item))
	if err != nil || rec == nil {
		return false, err
	}
	if id.Part == "" {
		return true, nil
	}
	for _, k := range rec.Kids {
		if strings.HasSuffix(k, "/documentversions/"+id.Part) {
			return true, nil
		}
	}
	return false, nil
}

// fetchObject fetches an object now, as the document Synchronize makes of
// it.
func (r *Repository) fetchObject(ctx context.Context, id restsync.Identifier) (*restsync.Fetched, error) {
	s := r.Set[id.Task]
	a, err := r.open(ctx, s)
	if err != nil {
		return nil, err
	}
	b, err := newBuilder(s)
	if err != nil {
		return nil, err
	}
	rec, err := r.Record(id.Task, objectKey(id.Item))
	if err != nil {
		return nil, err
	}
	var st objState
	if rec != nil {
		_ = jsonUnmarshal(rec.Extra, &st)
	}
	it, err := a.object(ctx, id.Kind, id.Item)
	if err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("%s %s is gone", id.Kind, id.Item)
		}
		return nil, err
	}
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
		if len(perms) == 0 {
			// Without permissions of its own it has those of its
			// nearest parent that has some, as Synchronize works them
			// out.
			err = a.ancestors(ctx, it, func(parent *item) (bool, error) {
				var err error
				perms, err = a.permissions(ctx, parent.kind(), parent.ID)
				return len(perms) > 0, err
			})
			if err != nil {
				return nil, err
			}
		}
	}
	acl := aclsOf(perms)
	if id.Kind != kindDocument {
		doc := b.containerDoc(id.Task, it, st.Path, cat, acl, nil)
		var text bytes.Buffer
		fmt.Fprintln(&text, st.Path)
		return &restsync.Fetched{Ref: doc.Reference, MimeType: "text/plain; charset=utf-8", Name: restsync.SafeName(it.Name) + ".txt", Content: text.Bytes(), Doc: doc}, nil
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
	return &restsync.Fetched{Ref: doc.Reference, MimeType: ct, Name: restsync.SafeName(name), Content: c.file.Data, Doc: doc}, nil
}

// View implements fetch.Viewer: a document's (or version's) content, or a
// container's path, fetched now, with the document's fields as metadata.
// Only objects the task indexed can be viewed.
func (r *Repository) View(ctx context.Context, identifier string, _ messages.Params) (*fetch.ViewResult, error) {
	return r.Repo.View(ctx, identifier, r.items())
}

// identifiers lists the objects a task has indexed, with their names.
func (r *Repository) identifiers(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	return r.Identifiers(ctx, job, task, "o\x00", func(key string, rec *restsync.Record) (restsync.Listed, bool) {
		var st objState
		_ = jsonUnmarshal(rec.Extra, &st)
		id := strings.TrimPrefix(key, "o\x00")
		attrs := "folder"
		if st.Kind == kindDocument {
			attrs = "document"
		}
		typ := map[string]string{kindFolder: "Objective Folder", kindFile: "Objective File", kindDocument: "Objective Document"}[st.Kind]
		return restsync.Listed{ID: identifier(task, st.Kind, rec.Parent, id, ""), Name: rec.Title, Type: typ, Attributes: attrs}, true
	})
}

// delete deletes documents in Objective, then removes their documents
// from the target and forgets them. Only documents the task indexed are
// deleted (an identifier of any other fails, as with View and Collect).
func (r *Repository) delete(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	for _, task := range req.Tasks {
		ds, err := r.Datastore(task)
		if err != nil {
			return o.Elements(), err
		}
		done := restsync.NoteAction(ds, restsync.ActionDelete, r.Now, r.Log)
		cnt := restsync.Counts(job, task)
		a, err := r.open(ctx, r.Set[task])
		if err != nil {
			done()
			return o.Elements(), err
		}
		b := &restsync.Batch{DS: ds, Target: r.Target, Counts: cnt, Log: r.Log, Report: restsync.FailOf(job, task)}
		seen := map[string]bool{} // the documents of this task given so far
		for _, e := range req.IDs {
			if e.Task != task {
				continue
			}
			if err := job.Checkpoint(ctx); err != nil {
				done()
				return o.Elements(), err
			}
			id, _ := decodeIdentifier(e.Raw)
			if seen[id.Item] {
				// Given twice: one document, deleted, forgotten,
				// counted and listed once.
				continue
			}
			seen[id.Item] = true
			// Only a document the task indexed is deleted, as only
			// such a document can be viewed or collected: a stale or
			// crafted identifier must not delete one it never
			// delivered.
			rec, err := restsync.GetRecord(ds, objectKey(id.Item))
			if err != nil {
				done()
				return o.Elements(), err
			}
			if rec == nil {
				o.Failure(e.Raw, "the task has not indexed this "+id.Kind)
				continue
			}
			err = a.delete(ctx, kindDocument, id.Item)
			if err != nil && !errors.Is(err, messages.ErrNotFound) {
				if fatal(ctx, err) {
					done()
					return o.Elements(), err
				}
				o.Failure(e.Raw, err.Error())
				cnt.Errors.Add(1)
				continue
			}
			b.Forget(objectKey(id.Item), rec)
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
			f, _, err := restsync.OpenInsertFile(r.Cfg.Security.InsertFolders, d.File.Path)
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
	s := r.Set[task]
	items := make([]restsync.Inserting, len(req.inserts))
	for i, d := range req.inserts {
		items[i] = restsync.Inserting{Ref: d.Property("PATH"), InsertID: d.InsertID}
	}
	var a *api
	return r.Insert(ctx, job, task, items, func() (err error) { a, err = r.open(ctx, s); return err }, func(i int) (string, error) {
		it, err := r.insertOne(ctx, a, s, req.inserts[i])
		if err != nil {
			return "", err
		}
		return identifier(task, kindDocument, it.ParentID, it.ID, ""), nil
	}, fatal)
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
		f, size, err := restsync.OpenInsertFile(r.Cfg.Security.InsertFolders, d.File.Path)
		if err != nil {
			return nil, err
		}
		f.Close()
		up.size = size
		up.open = func() (io.ReadCloser, error) {
			f, _, err := restsync.OpenInsertFile(r.Cfg.Security.InsertFolders, d.File.Path)
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
