package restsync

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
)

// CollectDir is a Collect destination confined to [Security]
// CollectFolders: an allowed folder and a relative path inside it.
type CollectDir struct {
	Folder string
	Rel    string
}

// ConfineCollect checks a Collect destination against the allowed folders:
// "" is the first of them, a relative path lies in the first of them, an
// absolute one must lie in one. Nothing is touched.
func ConfineCollect(folders []string, dest string) (CollectDir, error) {
	if len(folders) == 0 {
		return CollectDir{}, errors.New("Collect writes nothing: [Security] CollectFolders is empty")
	}
	if strings.ContainsRune(dest, 0) {
		return CollectDir{}, errors.New("not a folder name")
	}
	if dest == "" {
		return CollectDir{folders[0], "."}, nil
	}
	if !filepath.IsAbs(dest) {
		rel := filepath.Clean(dest)
		if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return CollectDir{}, errors.New("must stay inside [Security] CollectFolders")
		}
		return CollectDir{folders[0], rel}, nil
	}
	for _, f := range folders {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(abs, filepath.Clean(dest))
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return CollectDir{f, rel}, nil
		}
	}
	return CollectDir{}, errors.New("is not inside a folder that [Security] CollectFolders allows")
}

// Collector writes collected items into a CollectDir through os.Root, so
// nothing is written outside it.
type Collector struct {
	root *os.Root
	rel  string
}

// OpenCollector creates the destination folder when missing.
func OpenCollector(d CollectDir) (*Collector, error) {
	if err := os.MkdirAll(d.Folder, 0o750); err != nil {
		return nil, fmt.Errorf("collect folder %s: %w", d.Folder, err)
	}
	root, err := os.OpenRoot(d.Folder)
	if err != nil {
		return nil, fmt.Errorf("collect folder %s: %w", d.Folder, err)
	}
	if err := root.MkdirAll(d.Rel, 0o750); err != nil {
		root.Close()
		return nil, fmt.Errorf("collect into %s: %w", filepath.Join(d.Folder, d.Rel), err)
	}
	return &Collector{root: root, rel: d.Rel}, nil
}

// Close releases the folder.
func (c *Collector) Close() error { return c.root.Close() }

// Write writes content as name (made safe), and beside it name.idx:
// doc's fields with AUTN_COLLECTTIME. Both names must be free: when
// either is taken (by any file, such as an item collected earlier as
// "name.idx"), a number is added ("name (1)", "name (1).idx"), so no
// existing file is ever replaced. It returns the name written. On an
// error (a document the sidecar cannot carry, a failed write) neither
// file is left behind.
func (c *Collector) Write(name string, content []byte, doc *ingest.Document, now time.Time) (string, error) {
	// The sidecar is rendered first: a document it cannot carry fails the
	// item before any file exists.
	d := *doc
	d.Fields = append(slices.Clone(doc.Fields), ingest.Field{Name: "AUTN_COLLECTTIME", Value: strconv.FormatInt(now.Unix(), 10)})
	d.Source = nil
	var side bytes.Buffer
	if err := ingest.WriteIDX(&side, &d); err != nil {
		return "", err
	}
	base := SafeName(name)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for i := 0; i < 1000; i++ {
		n := base
		if i > 0 {
			n = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		p := filepath.Join(c.rel, n)
		f, err := c.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("write %s: %w", n, err)
		}
		// Claim the sidecar's name too before anything is written.
		sf, err := c.root.OpenFile(p+".idx", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			_ = f.Close()
			_ = c.root.Remove(p)
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return "", fmt.Errorf("write %s.idx: %w", n, err)
		}
		_, err = f.Write(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("write %s: %w", n, err)
		} else {
			_, err = sf.Write(side.Bytes())
			if err != nil {
				err = fmt.Errorf("write %s.idx: %w", n, err)
			}
		}
		if cerr := sf.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s.idx: %w", n, cerr)
		}
		if err != nil {
			// A failed item leaves neither half behind (best effort).
			_ = c.root.Remove(p)
			_ = c.root.Remove(p + ".idx")
			return "", err
		}
		return n, nil
	}
	return "", fmt.Errorf("too many files named %s", base)
}

// SafeName makes a file name of a title or a service's file name.
func SafeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 32 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, strings.TrimSpace(strings.ToValidUTF8(s, "")))
	s = strings.Trim(s, ". ")
	if len(s) > 100 {
		s = strings.ToValidUTF8(s[:100], "")
	}
	if s == "" {
		s = "item"
	}
	return s
}

// Outcome is the <tasks> result of Collect, Delete, Insert and Update (and
// of the HTTP connector's Synchronize with Identifiers):
// <success>ID</success>... then <failed message="why">ID</failed>..., as
// connectors.xsd orders them (ActionTasks: success is a plain string, with
// no attribute). Insert adds <identifiers><identifier
// insert_id="...">ID</identifier>...</identifiers> after it:
// connectors.xsd's ResponseIdentifier is where an insert_id has room. The
// connectors outside restsync (httpfetch, mailfetch) use it too.
type Outcome struct {
	OK, Bad []string
	Why     []string
	// Inserted are the identifiers of inserted items, as <identifiers>.
	Inserted []Inserted
}

// Inserted is an inserted item: its identifier and the insert_id it was
// given in InsertXML.
type Inserted struct{ ID, InsertID string }

// Success notes an identifier that worked.
func (o *Outcome) Success(id string) { o.OK = append(o.OK, id) }

// Failure notes an identifier that failed, and why.
func (o *Outcome) Failure(id, why string) {
	o.Bad = append(o.Bad, id)
	o.Why = append(o.Why, why)
}

// Elements returns the result elements: <tasks> with the successes then
// the failures (connectors.xsd's order), and <identifiers> of inserted
// items when there are any.
func (o *Outcome) Elements() []*messages.Element {
	t := &messages.Element{Name: "tasks"}
	for _, id := range o.OK {
		t.Children = append(t.Children, &messages.Element{Name: "success", Text: id, List: true})
	}
	for i, id := range o.Bad {
		t.Children = append(t.Children, &messages.Element{Name: "failed", Text: id, List: true,
			Attrs: []*messages.Param{{Name: "message", Value: o.Why[i]}}})
	}
	out := []*messages.Element{t}
	if len(o.Inserted) > 0 {
		ids := &messages.Element{Name: "identifiers", List: true}
		for _, in := range o.Inserted {
			e := &messages.Element{Name: "identifier", Text: in.ID, List: true}
			if in.InsertID != "" {
				e.Attrs = []*messages.Param{{Name: "insert_id", Value: in.InsertID}}
			}
			ids.Children = append(ids.Children, e)
		}
		out = append(out, ids)
	}
	return out
}
