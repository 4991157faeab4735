package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type idxBundle struct {
	dir string
	fs  *faultFS
	t   *idxFolder
}

func setupIDX(t *testing.T, batch int) idxBundle {
	t.Helper()
	dir := t.TempDir()
	fs := newFaultFS()
	opts := Options{Directory: dir, BatchSize: batch}
	require.NoError(t, opts.withDefaults())
	tg, err := openIDXFolder(opts, fs, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tg.Close() })
	return idxBundle{dir: dir, fs: fs, t: tg}
}

func makeDocs(prefix string, n int) []*Document {
	docs := make([]*Document, n)
	for i := range docs {
		docs[i] = &Document{
			Reference: fmt.Sprintf("%s/%d", prefix, i),
			Fields:    []Field{{Name: "TITLE", Value: fmt.Sprintf("Page %d", i)}, {Name: "URL", Value: fmt.Sprintf("%s/%d", prefix, i)}},
			Content:   fmt.Sprintf("Text of page %d.\nSecond line.", i),
		}
	}
	return docs
}

// readIDXFolder reads every .idx and .del file of dir in name order.
func readIDXFolder(t *testing.T, dir string) (adds []*Document, removes []string, ops []string) {
	t.Helper()
	for _, name := range filesWithExt(t, dir, ExtIDX, ExtRemoval) {
		data := readFile(t, dir, name)
		if filepath.Ext(name) == ExtIDX {
			docs, err := ReadIDX(bytes.NewReader(data))
			require.NoError(t, err, name)
			adds = append(adds, docs...)
			for _, d := range docs {
				ops = append(ops, "add "+d.Reference)
			}
			continue
		}
		refs, err := ReadDeleteRefs(bytes.NewReader(data))
		require.NoError(t, err, name)
		removes = append(removes, refs...)
		for _, r := range refs {
			ops = append(ops, "remove "+r)
		}
	}
	return adds, removes, ops
}

var idxNameRE = regexp.MustCompile(`^\d{20}-[0-9a-f]{16}\.(idx|del)$`)

func TestIDXFolderAddAndRemove(t *testing.T) {
	t.Parallel()
	b := setupIDX(t, 2)
	ctx := context.Background()
	docs := makeDocs("http://site", 5)
	require.NoError(t, b.t.Add(ctx, docs))
	require.NoError(t, b.t.Remove(ctx, []string{"http://site/1", "http://site/old"}))
	require.NoError(t, b.t.Add(ctx, nil), "an empty batch is a no-op")
	require.NoError(t, b.t.Remove(ctx, nil))

	names := dirFiles(t, b.dir)
	require.Len(t, names, 4, "5 documents in batches of 2 make 3 files, plus one removal file: %v", names)
	for _, n := range names {
		require.Regexp(t, idxNameRE, n)
	}
	adds, removes, ops := readIDXFolder(t, b.dir)
	require.Equal(t, docs, adds)
	require.Equal(t, []string{"http://site/1", "http://site/old"}, removes)
	require.Equal(t, []string{
		"add http://site/0", "add http://site/1", "add http://site/2", "add http://site/3", "add http://site/4",
		"remove http://site/1", "remove http://site/old",
	}, ops)
	require.Equal(t, "#DREDELETEREF http://site/1\n#DREDELETEREF http://site/old\n", string(readFile(t, b.dir, names[3])))
	require.Equal(t, "IDX folder "+b.dir, b.t.Describe())
}

// TestIDXFolderConcurrentWriters runs several goroutines against one target
// and a second target on the same folder (as a restarted or second process
// would): every document lands exactly once, no name collides, and the name
// order of one target's files is its delivery order.
func TestIDXFolderConcurrentWriters(t *testing.T) {
	t.Parallel()
	b := setupIDX(t, 3)
	opts := Options{Directory: b.dir, BatchSize: 3}
	require.NoError(t, opts.withDefaults())
	other, err := openIDXFolder(opts, osFS{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })

	const writers, perWriter = 6, 10
	var wg sync.WaitGroup
	for w := range writers {
		tg := b.t
		if w%2 == 1 {
			tg = other
		}
		wg.Go(func() {
			for i := range perWriter {
				docs := makeDocs(fmt.Sprintf("w%d/b%d", w, i), 4)
				if err := tg.Add(context.Background(), docs); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()

	adds, _, _ := readIDXFolder(t, b.dir)
	require.Len(t, adds, writers*perWriter*4)
	seen := map[string]bool{}
	for _, d := range adds {
		require.False(t, seen[d.Reference], "delivered twice: %s", d.Reference)
		seen[d.Reference] = true
	}
	// Per writer goroutine, batches were sent one after another, so in name
	// order batch i of a writer must come before batch i+1.
	last := map[string]int{}
	for _, d := range adds {
		var w, bt, n int
		_, err := fmt.Sscanf(d.Reference, "w%d/b%d/%d", &w, &bt, &n)
		require.NoError(t, err)
		key := fmt.Sprint(w)
		require.GreaterOrEqual(t, bt, last[key], "writer %d's batches out of order", w)
		last[key] = bt
	}
	require.Empty(t, filesWithExt(t, b.dir, extTemp), "no temporary file may be left")
}

func TestIDXFolderRejectsInvalidDocuments(t *testing.T) {
	t.Parallel()
	b := setupIDX(t, 1)
	docs := append(makeDocs("ok", 2), &Document{Reference: "bad\nref"})
	err := b.t.Add(context.Background(), docs)
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, ErrInvalidDocument)
	err = b.t.Remove(context.Background(), []string{"fine", ""})
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, ErrInvalidDocument)
	require.Empty(t, dirFiles(t, b.dir), "an invalid batch must deliver nothing")
}

func TestIDXFolderFailures(t *testing.T) {
	t.Parallel()
	errIO := errors.New("input/output error")
	tests := []struct {
		desc   string
		inject func(f *faultFS)
		want   error
	}{
		{desc: "disk full during write", inject: func(f *faultFS) { f.writeBudget = 100 }, want: syscall.ENOSPC},
		{desc: "disk full at once", inject: func(f *faultFS) { f.writeBudget = 0 }, want: syscall.ENOSPC},
		{desc: "fsync fails", inject: func(f *faultFS) { f.syncErr = errIO }, want: errIO},
		{desc: "rename fails", inject: func(f *faultFS) { f.renameErr = errIO }, want: errIO},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			b := setupIDX(t, 2)
			b.fs.set(tt.inject)
			err := b.t.Add(context.Background(), makeDocs("x", 5))
			require.ErrorIs(t, err, ErrDelivery)
			require.ErrorIs(t, err, tt.want)
			require.Empty(t, dirFiles(t, b.dir), "a failed batch leaves neither final nor temporary files")

			// Once the disk recovers, the same target delivers again.
			b.fs.set(func(f *faultFS) { f.writeBudget, f.syncErr, f.renameErr = -1, nil, nil })
			require.NoError(t, b.t.Add(context.Background(), makeDocs("x", 5)))
			adds, _, _ := readIDXFolder(t, b.dir)
			require.Len(t, adds, 5)
		})
	}
}

// A call's files are fsynced as they are written, not once all of them
// are: the last file of a call is created only once a file was being
// fsynced (before, every file was written before the first fsync, so the
// hook below waited out its deadline).
func TestIDXFolderSyncsFilesWhileTheNextAreWritten(t *testing.T) {
	t.Parallel()
	b := setupIDX(t, 2)
	const files = 4 // 7 documents, 2 per file
	syncing := make(chan struct{})
	var once sync.Once
	var overlapped atomic.Bool
	b.fs.set(func(f *faultFS) {
		f.syncHook = func() { once.Do(func() { close(syncing) }) }
		f.openHook = func(n int) {
			if n != files-1 {
				return
			}
			select {
			case <-syncing:
				overlapped.Store(true)
			case <-time.After(10 * time.Second):
			}
		}
	})
	require.NoError(t, b.t.Add(context.Background(), makeDocs("x", 7)))
	require.True(t, overlapped.Load(), "no file was fsynced before the call's last file was created")
	adds, _, _ := readIDXFolder(t, b.dir)
	require.Len(t, adds, 7)
	for i, d := range adds {
		require.Equal(t, fmt.Sprintf("x/%d", i), d.Reference, "files in the order of the call")
	}
	require.Len(t, filesWithExt(t, b.dir, ExtIDX), files)
	require.Len(t, dirFiles(t, b.dir), files, "no temporary file left")
}

func TestIDXFolderDirFsyncFails(t *testing.T) {
	t.Parallel()
	b := setupIDX(t, 10)
	errIO := errors.New("input/output error")
	b.fs.set(func(f *faultFS) { f.syncDirErr = errIO })
	err := b.t.Add(context.Background(), makeDocs("x", 3))
	require.ErrorIs(t, err, ErrDelivery, "a rename that is not durable is not a delivery")
	require.ErrorIs(t, err, errIO)
}

func TestIDXFolderBecomesUnwritable(t *testing.T) {
	t.Parallel()
	b := setupIDX(t, 10)
	// Replace the folder by a plain file: creating anything in it now fails
	// with ENOTDIR, whatever the user's privileges.
	require.NoError(t, os.Remove(b.dir))
	require.NoError(t, os.WriteFile(b.dir, []byte("not a folder"), 0o644))
	err := b.t.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, syscall.ENOTDIR)
	require.ErrorContains(t, err, "IDX add of 1 documents to "+b.dir)
}

func TestIDXFolderClosedAndCancelled(t *testing.T) {
	t.Parallel()
	b := setupIDX(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.t.Add(ctx, makeDocs("x", 2))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, context.Canceled)

	require.NoError(t, b.t.Close())
	require.NoError(t, b.t.Close(), "closing twice is harmless")
	err = b.t.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, ErrClosed)
	err = b.t.Remove(context.Background(), []string{"x"})
	require.ErrorIs(t, err, ErrClosed)
	require.Empty(t, dirFiles(t, b.dir))
}
