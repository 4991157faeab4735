package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

type jsonlBundle struct {
	dir string
	fs  *faultFS
	t   *jsonlTarget
}

func setupJSONL(t *testing.T, opts Options) jsonlBundle {
	t.Helper()
	dir := t.TempDir()
	fs := newFaultFS()
	opts.Directory = dir
	require.NoError(t, opts.withDefaults())
	tg, err := openJSONL(opts, fs, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tg.Close() })
	return jsonlBundle{dir: dir, fs: fs, t: tg}
}

// jsonlLine is a line as a consumer decodes it; DisallowUnknownFields
// keeps the documented schema honest.
type jsonlLine struct {
	Op         string  `json:"op"`
	Reference  string  `json:"reference"`
	Fields     []Field `json:"fields"`
	Content    string  `json:"content"`
	Source     []byte  `json:"source"`
	SourceType string  `json:"sourcetype"`
}

// readJSONL decodes every line of every .jsonl file of dir in name order,
// skipping a torn final line as the package doc tells consumers to.
func readJSONL(t *testing.T, dir string) []jsonlLine {
	t.Helper()
	var out []jsonlLine
	for _, name := range filesWithExt(t, dir, ExtJSONL) {
		data := readFile(t, dir, name)
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break // torn final line
			}
			dec := json.NewDecoder(bytes.NewReader(data[:i]))
			dec.DisallowUnknownFields()
			var l jsonlLine
			require.NoError(t, dec.Decode(&l), "%s: %s", name, data[:i])
			out = append(out, l)
			data = data[i+1:]
		}
	}
	return out
}

func TestJSONLSchema(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	ctx := context.Background()
	docs := []*Document{
		{Reference: "http://a/1", Fields: []Field{{Name: "TITLE", Value: "<One> & \"two\""}, {Name: "K", Value: "1"}, {Name: "K", Value: "2"}}, Content: "text\nmore"},
		{Reference: "http://a/2", Source: []byte("%PDF-1.4\x00\xff"), SourceType: "application/pdf"},
	}
	require.NoError(t, b.t.Add(ctx, docs))
	require.NoError(t, b.t.Remove(ctx, []string{"http://a/0"}))

	files := filesWithExt(t, b.dir, ExtJSONL)
	require.Len(t, files, 1)
	require.Regexp(t, regexp.MustCompile(`^\d{20}-[0-9a-f]{16}\.jsonl$`), files[0])
	require.Equal(t,
		`{"op":"add","reference":"http://a/1","fields":[{"name":"TITLE","value":"<One> & \"two\""},{"name":"K","value":"1"},{"name":"K","value":"2"}],"content":"text\nmore"}`+"\n"+
			`{"op":"add","reference":"http://a/2","fields":[],"content":"","source":"JVBERi0xLjQA/w==","sourcetype":"application/pdf"}`+"\n"+
			`{"op":"remove","reference":"http://a/0"}`+"\n",
		string(readFile(t, b.dir, files[0])))
	lines := readJSONL(t, b.dir)
	require.Equal(t, docs[1].Source, lines[1].Source)
	require.Equal(t, "JSONL folder "+b.dir, b.t.Describe())
}

func TestJSONLRotation(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{MaxFileBytes: 1000, BatchSize: 4})
	for i := range 10 {
		require.NoError(t, b.t.Add(context.Background(), makeDocs(fmt.Sprintf("b%d", i), 4)))
	}
	files := filesWithExt(t, b.dir, ExtJSONL)
	require.Greater(t, len(files), 3, "batches of ~600 bytes with a 1000-byte limit need a file each")
	for _, f := range files {
		data := readFile(t, b.dir, f)
		require.Equal(t, 4, bytes.Count(data, []byte("\n")), "a batch never spans two files: %s", f)
	}
	lines := readJSONL(t, b.dir)
	require.Len(t, lines, 40)
	for i, l := range lines {
		require.Equal(t, fmt.Sprintf("b%d/%d", i/4, i%4), l.Reference, "files sort in delivery order")
	}
}

func TestJSONLReopenStartsNewFile(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	require.NoError(t, b.t.Add(context.Background(), makeDocs("first", 1)))
	require.NoError(t, b.t.Close())
	opts := Options{Directory: b.dir}
	require.NoError(t, opts.withDefaults())
	again, err := openJSONL(opts, osFS{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = again.Close() })
	require.NoError(t, again.Add(context.Background(), makeDocs("second", 1)))
	require.Len(t, filesWithExt(t, b.dir, ExtJSONL), 2)
	lines := readJSONL(t, b.dir)
	require.Equal(t, "first/0", lines[0].Reference)
	require.Equal(t, "second/0", lines[1].Reference)
}

// A consumer that takes the file the target is appending to (removes it
// once read, or moves it away) does not make the next deliveries vanish:
// the target starts a new file. Before, it went on appending to the
// removed (or moved) file, for as long as it ran or until the file
// reached MaxFileBytes: every later document was counted delivered and
// could never be read from the folder.
func TestJSONLFileTakenByAConsumer(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"removed", "moved"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			b := setupJSONL(t, Options{})
			ctx := context.Background()
			require.NoError(t, b.t.Add(ctx, makeDocs("first", 2)))
			files := filesWithExt(t, b.dir, ExtJSONL)
			require.Len(t, files, 1)
			taken := filepath.Join(t.TempDir(), "taken.jsonl")
			if how == "removed" {
				require.NoError(t, os.Remove(filepath.Join(b.dir, files[0])))
			} else {
				require.NoError(t, os.Rename(filepath.Join(b.dir, files[0]), taken))
			}
			require.NoError(t, b.t.Remove(ctx, []string{"first/0"}))
			require.NoError(t, b.t.Add(ctx, makeDocs("second", 1)))
			lines := readJSONL(t, b.dir)
			require.Len(t, lines, 2, "the deliveries after the file was taken are in the folder")
			require.Equal(t, "remove", lines[0].Op)
			require.Equal(t, "first/0", lines[0].Reference)
			require.Equal(t, "second/0", lines[1].Reference)
			if how == "moved" {
				data, err := os.ReadFile(taken)
				require.NoError(t, err)
				require.Equal(t, 2, bytes.Count(data, []byte("\n")), "nothing appended to the file once taken")
			}
		})
	}
}

// Taken between two batches of one call, the file holds a batch the call
// wrote and had not fsynced: the call fails (it is sent again whole), and
// the next one goes to a new file.
func TestJSONLFileTakenDuringACall(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{BatchSize: 1})
	ctx := context.Background()
	var once sync.Once
	b.fs.set(func(f *faultFS) {
		f.wroteHook = func() {
			once.Do(func() { // after the call's first batch
				for _, n := range filesWithExt(t, b.dir, ExtJSONL) {
					require.NoError(t, os.Remove(filepath.Join(b.dir, n)))
				}
			})
		}
	})
	err := b.t.Add(ctx, makeDocs("first", 2))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorContains(t, err, "moved or removed")
	require.NoError(t, b.t.Add(ctx, makeDocs("again", 1)))
	lines := readJSONL(t, b.dir)
	require.Len(t, lines, 1)
	require.Equal(t, "again/0", lines[0].Reference)
}

func TestJSONLConcurrentAdds(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{MaxFileBytes: 4096, BatchSize: 5})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 5 {
				if err := b.t.Add(context.Background(), makeDocs(fmt.Sprintf("w%d/%d", w, i), 5)); err != nil {
					t.Errorf("writer %d: %v", w, err)
				}
			}
		})
	}
	wg.Wait()
	lines := readJSONL(t, b.dir)
	require.Len(t, lines, 8*5*5)
	seen := map[string]bool{}
	for _, l := range lines {
		require.False(t, seen[l.Reference])
		seen[l.Reference] = true
	}
}

func TestJSONLWriteFailureCutsBackTheBatch(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	ctx := context.Background()
	require.NoError(t, b.t.Add(ctx, makeDocs("good", 2)))
	files := filesWithExt(t, b.dir, ExtJSONL)
	before := readFile(t, b.dir, files[0])

	b.fs.set(func(f *faultFS) { f.writeBudget = 50 }) // the disk fills up mid-batch
	err := b.t.Add(ctx, makeDocs("lost", 3))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, before, readFile(t, b.dir, files[0]), "the partial batch is cut off")

	b.fs.set(func(f *faultFS) { f.writeBudget = -1 })
	require.NoError(t, b.t.Add(ctx, makeDocs("again", 1)))
	require.Equal(t, files, filesWithExt(t, b.dir, ExtJSONL), "after a clean cut the file stays in use")
	var refs []string
	for _, l := range readJSONL(t, b.dir) {
		refs = append(refs, l.Reference)
	}
	require.Equal(t, []string{"good/0", "good/1", "again/0"}, refs)
}

func TestJSONLTruncateFailureAbandonsFile(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	ctx := context.Background()
	require.NoError(t, b.t.Add(ctx, makeDocs("good", 1)))
	errIO := errors.New("input/output error")
	b.fs.set(func(f *faultFS) { f.writeBudget, f.truncateErr = 30, errIO })
	require.ErrorIs(t, b.t.Add(ctx, makeDocs("torn", 2)), syscall.ENOSPC)

	b.fs.set(func(f *faultFS) { f.writeBudget, f.truncateErr = -1, nil })
	require.NoError(t, b.t.Add(ctx, makeDocs("next", 1)))
	files := filesWithExt(t, b.dir, ExtJSONL)
	require.Len(t, files, 2, "a file with a torn batch is not appended to")
	require.False(t, bytes.HasSuffix(readFile(t, b.dir, files[0]), []byte("\n")), "the abandoned file ends in a torn line")
	var refs []string
	for _, l := range readJSONL(t, b.dir) {
		refs = append(refs, l.Reference)
	}
	require.Equal(t, []string{"good/0", "next/0"}, refs)
}

func TestJSONLFsyncFailure(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	ctx := context.Background()
	errIO := errors.New("input/output error")
	b.fs.set(func(f *faultFS) { f.syncErr = errIO })
	err := b.t.Add(ctx, makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, errIO)

	b.fs.set(func(f *faultFS) { f.syncErr = nil })
	require.NoError(t, b.t.Add(ctx, makeDocs("y", 1)))
	require.Len(t, filesWithExt(t, b.dir, ExtJSONL), 2, "a file whose fsync failed is not trusted again")
}

func TestJSONLUnwritableFolderAndClosed(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	require.NoError(t, os.Remove(b.dir))
	require.NoError(t, os.WriteFile(b.dir, nil, 0o644))
	err := b.t.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, syscall.ENOTDIR)

	require.NoError(t, b.t.Close())
	require.NoError(t, b.t.Close())
	err = b.t.Remove(context.Background(), []string{"x"})
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, ErrClosed)
}

func TestJSONLInvalidAndCancelled(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	err := b.t.Add(context.Background(), []*Document{{Reference: "ok"}, nil})
	require.ErrorIs(t, err, ErrInvalidDocument)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = b.t.Add(ctx, makeDocs("x", 1))
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, dirFiles(t, b.dir))
}

// TestJSONLLinesAreSelfContained checks that content full of JSON and line
// separators still yields one line per document.
func TestJSONLLinesAreSelfContained(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	doc := &Document{Reference: "r", Content: "a\nb\r\n\u2028c\"}\n{\"op\":\"remove\"", Fields: []Field{{Name: "X", Value: "\x00\t"}}}
	require.NoError(t, b.t.Add(context.Background(), []*Document{doc}))
	f := filesWithExt(t, b.dir, ExtJSONL)[0]
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, b.dir, f)))
	n := 0
	for sc.Scan() {
		n++
	}
	require.Equal(t, 1, n)
	lines := readJSONL(t, b.dir)
	require.Equal(t, doc.Content, lines[0].Content)
	require.Equal(t, doc.Fields, lines[0].Fields)
}

func TestJSONLNewFileNotDurable(t *testing.T) {
	t.Parallel()
	b := setupJSONL(t, Options{})
	errIO := errors.New("input/output error")
	b.fs.set(func(f *faultFS) { f.syncDirErr = errIO })
	err := b.t.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, errIO)
	require.Empty(t, dirFiles(t, b.dir), "a file whose creation is not durable is removed unused")

	err = b.t.Remove(context.Background(), []string{"ok", "two\nlines"})
	require.ErrorIs(t, err, ErrInvalidDocument)
}

// TestJSONLOneFsyncPerCall: the batches of one call are written one by
// one and fsynced together, once per file they went to (a full file is
// fsynced before the next one starts).
func TestJSONLOneFsyncPerCall(t *testing.T) {
	t.Parallel()
	syncs := func(b jsonlBundle) int {
		b.fs.mu.Lock()
		defer b.fs.mu.Unlock()
		return b.fs.syncs
	}
	b := setupJSONL(t, Options{BatchSize: 4})
	require.NoError(t, b.t.Add(context.Background(), makeDocs("a", 40)))
	require.Equal(t, 1, syncs(b), "10 batches, one fsync")
	require.Len(t, readJSONL(t, b.dir), 40)

	b = setupJSONL(t, Options{MaxFileBytes: 1000, BatchSize: 4})
	require.NoError(t, b.t.Add(context.Background(), makeDocs("r", 40)))
	files := filesWithExt(t, b.dir, ExtJSONL)
	require.Greater(t, len(files), 3)
	require.Equal(t, len(files), syncs(b), "each file fsynced once, the full ones before the next started")
	lines := readJSONL(t, b.dir)
	require.Len(t, lines, 40)
	for i, l := range lines {
		require.Equal(t, fmt.Sprintf("r/%d", i), l.Reference, "files sort in delivery order")
	}
}
