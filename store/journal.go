package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The journal makes ApplyActions cheap: a group commit is one write and one
// fdatasync into a segment file that was filled with zeros beforehand (an
// fdatasync that overwrites written blocks is the cheapest kind, about a
// third of a bbolt commit, which syncs twice and grows the file). The
// mutations are kept in memory (the overlay, see overlay.go) and folded
// into bbolt in large batches by a checkpoint, after which the segments
// they were in are deleted. Open replays whatever segments remain.
//
// Segment files are "<store file>.wal.<n>", n increasing. A segment holds
// frames, then zeros:
//
//	frame   = length:uint32 crc:uint32 hcrc:uint32 payload   (big-endian)
//	crc     = CRC-32C of payload
//	hcrc    = CRC-32C of length and crc (the header's own check)
//	payload = uvarint(len(queue)) queue uvarint(count) mutation*
//	mutation= kind:byte uvarint(len(data)) data     kind 1: put (data = encoded
//	                                                record), 2: delete (id)
//
// A header of zeros ends the segment's data. Appends are serialised and
// each is fdatasync'd before the next starts, so only the last frame of
// the last segment that holds data can have been torn by a crash (it was
// never acknowledged: the fdatasync that acknowledges it did not return).
// That frame is dropped, with a warning, when it is at the end of the
// data: its header checks but its payload does not (followed by nothing
// but zeros) or runs past the end of a file that appends extend, or its
// header does not check and nothing but zeros follows it. Anything else
// is damage (ErrCorrupt), and Open refuses the store: a damaged length is
// never taken for the end of the data, and a damaged frame is never
// skipped when acknowledged frames come after it.

const (
	journalExt       = ".wal."
	segmentSize      = 4 << 20
	frameHeaderBytes = 12
	kindPut          = 1
	kindDelete       = 2
)

type journalMutation struct {
	put  []byte // encoded record, or nil for a delete
	id   string // delete: the id
	seq  uint64 // put: the record's seq
	pid  string // put: the record's id
	kind byte
}

// encodeFrame builds the frame of one ApplyActions call.
func encodeFrame(queue string, muts []journalMutation) []byte {
	size := frameHeaderBytes + binary.MaxVarintLen64*2 + len(queue)
	for _, m := range muts {
		size += 1 + binary.MaxVarintLen64 + len(m.put) + len(m.id)
	}
	b := make([]byte, frameHeaderBytes, size)
	b = binary.AppendUvarint(b, uint64(len(queue)))
	b = append(b, queue...)
	b = binary.AppendUvarint(b, uint64(len(muts)))
	for _, m := range muts {
		b = append(b, m.kind)
		data := m.put
		if m.kind == kindDelete {
			data = []byte(m.id)
		}
		b = binary.AppendUvarint(b, uint64(len(data)))
		b = append(b, data...)
	}
	payload := b[frameHeaderBytes:]
	binary.BigEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	binary.BigEndian.PutUint32(b[8:12], crc32.Checksum(b[0:8], castagnoli))
	return b
}

// decodeFrame reads a frame's payload.
func decodeFrame(p []byte) (queue string, muts []journalMutation, err error) {
	r := bytes.NewReader(p)
	str := func() ([]byte, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return nil, errors.New("bad length")
		}
		b := make([]byte, n)
		_, _ = io.ReadFull(r, b)
		return b, nil
	}
	q, err := str()
	if err != nil {
		return "", nil, err
	}
	count, err := binary.ReadUvarint(r)
	if err != nil || count > uint64(len(p)) {
		return "", nil, errors.New("bad count")
	}
	for i := uint64(0); i < count; i++ {
		kind, err := r.ReadByte()
		if err != nil {
			return "", nil, err
		}
		data, err := str()
		if err != nil {
			return "", nil, err
		}
		switch kind {
		case kindPut:
			a, err := decodeAction(data)
			if err != nil {
				return "", nil, err
			}
			muts = append(muts, journalMutation{kind: kindPut, put: data, pid: a.GetId(), seq: a.GetStatus().GetSeq()})
		case kindDelete:
			muts = append(muts, journalMutation{kind: kindDelete, id: string(data)})
		default:
			return "", nil, fmt.Errorf("unknown mutation kind %d", kind)
		}
	}
	if r.Len() != 0 {
		return "", nil, errors.New("trailing bytes")
	}
	return string(q), muts, nil
}

// journal appends frames to segment files. Appends and rotation are
// serialised by mu; the next segment is prepared (zero-filled) on a
// goroutine so that rotation rarely waits.
type journal struct {
	dir, base string

	mu        sync.Mutex
	cur       *os.File
	curN      uint64
	off       int64
	size      int64    // size of cur
	segs      []uint64 // every segment not yet checkpointed, cur included
	nextN     uint64
	ready     chan preparedSeg // capacity 1: the prepared next segment
	preparing bool             // a preparation is under way (its result goes to ready)
	closing   bool
}

type preparedSeg struct {
	f   *os.File
	n   uint64
	err error
}

func segmentName(base string, n uint64) string {
	return base + journalExt + fmt.Sprintf("%06d", n)
}

// listSegments returns the numbers of the journal segments in dir, sorted.
func listSegments(dir, base string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	prefix := base + journalExt
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(e.Name(), prefix), 10, 64)
		if err != nil {
			continue // a preparation's temporary file or a stranger
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// tornFrame describes a frame dropped at the end of a segment's data as
// torn by a crash.
type tornFrame struct {
	offset int // where the frame starts
	bytes  int // how many bytes of the file it occupies
}

// readSegment calls fn for each frame of a segment, in order. It returns
// the torn frame it dropped at the end of the data, if any (see the
// format's comment); the caller decides whether a torn frame may be there
// at all (only in the last segment that holds data).
func readSegment(path string, fn func(queue string, muts []journalMutation) error) (*tornFrame, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	off := 0
	for off < len(data) {
		if off+frameHeaderBytes > len(data) {
			// A header cut by the end of the file: torn if it is not zeros.
			if err := checkZeros(path, data, off); err != nil {
				return &tornFrame{offset: off, bytes: len(data) - off}, nil
			}
			return nil, nil
		}
		hdr := data[off : off+frameHeaderBytes]
		if isZeros(hdr) {
			return nil, checkZeros(path, data, off)
		}
		if crc32.Checksum(hdr[0:8], castagnoli) != binary.BigEndian.Uint32(hdr[8:12]) {
			// A header that does not check: torn only if nothing but zeros
			// follows it (its length cannot be trusted to skip the payload).
			if err := checkZeros(path, data, off+frameHeaderBytes); err != nil {
				return nil, fmt.Errorf("%w (the frame header at offset %d does not match its checksum)", err, off)
			}
			return &tornFrame{offset: off, bytes: len(data) - off}, nil
		}
		n := int(binary.BigEndian.Uint32(hdr[0:4]))
		sum := binary.BigEndian.Uint32(hdr[4:8])
		end := off + frameHeaderBytes + n
		if end > len(data) {
			// A checked header, a payload cut by the end of the file: an
			// append torn by a crash.
			return &tornFrame{offset: off, bytes: len(data) - off}, nil
		}
		if crc32.Checksum(data[off+frameHeaderBytes:end], castagnoli) != sum {
			// Torn write: only zeros may follow what was being written.
			if err := checkZeros(path, data, end); err != nil {
				return nil, fmt.Errorf("%w (frame at offset %d does not match its checksum)", err, off)
			}
			return &tornFrame{offset: off, bytes: end - off}, nil
		}
		q, muts, err := decodeFrame(data[off+frameHeaderBytes : end])
		if err != nil {
			return nil, fmt.Errorf("journal %s: frame at offset %d: %w: %w", path, off, ErrCorrupt, err)
		}
		if err := fn(q, muts); err != nil {
			return nil, err
		}
		off = end
	}
	return nil, nil
}

func isZeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func checkZeros(path string, data []byte, from int) error {
	for i := from; i < len(data); i++ {
		if data[i] != 0 {
			return fmt.Errorf("journal %s: unexpected data at offset %d after the end of the journal: %w", path, i, ErrCorrupt)
		}
	}
	return nil
}

// newJournal starts a journal whose segments are numbered from first. The
// first segment is created at the first append, as a plain file that
// appends extend (opening a store costs nothing); the next, zero-filled,
// is prepared in the background once the current one is a quarter full.
func newJournal(dir, base string, first uint64) (*journal, error) {
	return &journal{dir: dir, base: base, nextN: first, ready: make(chan preparedSeg, 1)}, nil
}

// plain creates an empty segment file.
func (j *journal) plain() preparedSeg {
	n := j.nextN
	j.nextN++
	name := filepath.Join(j.dir, segmentName(j.base, n))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return preparedSeg{err: fmt.Errorf("journal: create %s: %w", name, err)}
	}
	if err := syncDir(j.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(name)
		return preparedSeg{err: err}
	}
	return preparedSeg{f: f, n: n}
}

// prepare creates segment n filled with zeros, synced, under a temporary
// name renamed into place (so a half-prepared file is never replayed).
func (j *journal) prepare(n uint64) preparedSeg {
	final := filepath.Join(j.dir, segmentName(j.base, n))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return preparedSeg{err: fmt.Errorf("journal: create %s: %w", final, err)}
	}
	fail := func(err error) preparedSeg {
		_ = f.Close()
		_ = os.Remove(tmp)
		return preparedSeg{err: fmt.Errorf("journal: prepare %s: %w", final, err)}
	}
	zeros := make([]byte, 1<<20)
	for written := 0; written < segmentSize; written += len(zeros) {
		if _, err := f.Write(zeros); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := syncDir(j.dir); err != nil {
		return fail(err)
	}
	return preparedSeg{f: f, n: n}
}

func (j *journal) prepareAsync() {
	n := j.nextN
	j.nextN++
	j.preparing = true
	go func() { j.ready <- j.prepare(n) }()
}

func (j *journal) use(p preparedSeg) {
	j.cur, j.curN, j.off, j.size = p.f, p.n, 0, segmentSize
	j.segs = append(j.segs, p.n)
}

// rotateLocked moves to the prepared segment (waiting for it if needed),
// or, for a frame larger than a segment, to a segment of its own size.
func (j *journal) rotateLocked(need int64) error {
	if need > segmentSize {
		n := j.nextN
		j.nextN++
		name := filepath.Join(j.dir, segmentName(j.base, n))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("journal: create %s: %w", name, err)
		}
		if err := syncDir(j.dir); err != nil {
			_ = f.Close()
			return err
		}
		if j.cur != nil {
			_ = j.cur.Close()
		}
		j.cur, j.curN, j.off, j.size = f, n, 0, need+frameHeaderBytes // +zeros: a terminator
		j.segs = append(j.segs, n)
		return nil
	}
	var p preparedSeg
	if j.preparing {
		p = <-j.ready
		j.preparing = false
		if p.err != nil {
			p = j.plain() // could not fill one: append to a plain one
		}
	} else {
		p = j.plain()
	}
	if p.err != nil {
		return p.err
	}
	if j.cur != nil {
		_ = j.cur.Close()
	}
	j.use(p)
	return nil
}

// append writes one frame durably. hooks run the fault injector's steps.
func (j *journal) append(frame []byte, beforeWrite func() error, afterSync func() error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur == nil || j.off+int64(len(frame)) > j.size {
		if err := j.rotateLocked(int64(len(frame))); err != nil {
			return err
		}
	}
	if err := beforeWrite(); err != nil {
		return err
	}
	if _, err := j.cur.WriteAt(frame, j.off); err != nil {
		// Part of the frame may be in the file (a full disk stops a write
		// midway). Cut it off, so the next frame is not followed by its
		// leftovers; if that fails too, the next append starts a new
		// segment and a replay refuses this one (ErrCorrupt), loudly.
		name := j.cur.Name()
		if terr := j.cur.Truncate(j.off); terr != nil {
			_ = j.cur.Close()
			j.cur = nil
		}
		return fmt.Errorf("journal: write %s: %w", name, err)
	}
	if err := fdatasync(j.cur); err != nil {
		return &syncError{fmt.Errorf("journal: sync %s: %w", j.cur.Name(), err)}
	}
	j.off += int64(len(frame))
	if !j.preparing && j.off > j.size/4 {
		j.prepareAsync()
	}
	return afterSync()
}

// syncError marks a failed fdatasync: the frame's fate is unknown.
type syncError struct{ err error }

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// seal ends the current segment (so that everything written so far lies in
// sealed segments) and returns the segments a checkpoint of everything so
// far covers.
func (j *journal) seal() ([]uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	covered := slices.Clone(j.segs)
	if j.cur == nil {
		return covered, nil
	}
	if j.off == 0 {
		// Nothing in the current segment: it stays current, uncovered.
		covered = covered[:len(covered)-1]
		return covered, nil
	}
	if err := j.rotateLocked(0); err != nil {
		return nil, err
	}
	return covered, nil
}

// drop deletes checkpointed segments.
func (j *journal) drop(segs []uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, n := range segs {
		if err := os.Remove(filepath.Join(j.dir, segmentName(j.base, n))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: remove checkpointed segment: %w", err)
		}
		j.segs = slices.DeleteFunc(j.segs, func(x uint64) bool { return x == n })
	}
	return syncDir(j.dir)
}

// close closes the current segment and deletes the prepared one.
func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closing {
		return
	}
	j.closing = true
	if j.cur != nil {
		_ = j.cur.Close()
		if j.off == 0 { // nothing in it (typically after the final checkpoint)
			_ = os.Remove(j.cur.Name())
			j.segs = slices.DeleteFunc(j.segs, func(x uint64) bool { return x == j.curN })
		}
	}
	if j.preparing {
		if p := <-j.ready; p.f != nil {
			_ = p.f.Close()
			_ = os.Remove(p.f.Name())
		}
		j.preparing = false
	}
}

// bytes returns the size of the journal's segment files.
func (j *journal) bytes() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var n int64
	for _, seg := range j.segs {
		if fi, err := os.Stat(filepath.Join(j.dir, segmentName(j.base, seg))); err == nil {
			n += fi.Size()
		}
	}
	return n
}
