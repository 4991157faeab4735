package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/connectorhq/connector/internal/readfile"
)

// The journal makes ApplyActions cheap: a group commit is one write and one
// fdatasync into a segment file whose space was allocated beforehand
// (zero-filled ahead of use, so the fdatasync overwrites written blocks:
// the cheapest kind, about a third of a bbolt commit, which syncs twice and
// grows the file). The mutations are kept in memory (the overlay, see
// overlay.go) and folded into bbolt in large batches by a checkpoint, after
// which the segments they were in are deleted. Open replays whatever the
// checkpoints have not folded.
//
// Segment files are "<store file>.wal.<n>", n increasing by one from one
// segment to the next, in the order they are used. A segment is created
// whole before it is used (written under a temporary name, synced, then
// renamed), so its size never changes:
//
//	segment = header frame* zeros
//	header  = magic "cnjournl" version:uint32(2) 0:uint32 size:uint64 0:uint32 hcrc:uint32
//	          (32 bytes; size is the file's size; hcrc = CRC-32C of the 28 bytes before it)
//	frame   = length:uint32 kind:byte 0:byte[3] seq:uint64 crc:uint32 hcrc:uint32 payload
//	          (big-endian; crc = CRC-32C of payload; hcrc = CRC-32C of the 20 header bytes before it)
//	kind 1, a batch: payload = uvarint(len(queue)) queue uvarint(count) mutation*
//	mutation= kind:byte uvarint(len(data)) data     kind 1: put (data = encoded
//	                                                record), 2: delete (id),
//	                                                3: datastore put (data = uvarint(len(task))
//	                                                task uvarint(len(key)) key value),
//	                                                4: datastore delete (data = uvarint(len(task))
//	                                                task key)
//	          (datastore mutations come first: they were made before the
//	          actions' mutations of the same frame; a frame of datastore
//	          mutations alone has an empty queue)
//	kind 2, the end of the segment: payload = the next segment's number (uint64)
//
// Every frame has the next sequence number (seq), across segments, from 1
// for the store's first frame. A segment that fills up ends with an end
// frame, written (and synced) once the next segment exists; after it, and
// after the last frame of the data, there are only zeros. The store file
// records, with each checkpoint, the first segment whose frames are not all
// folded (M) and the seq of the last frame that is (S): see journalRecord.
//
// That is what tells a torn tail from lost data. Appends are serialised and
// each is fdatasync'd before the next starts, so only the last frame of the
// data can have been torn by a crash: its header does not check and only
// zeros follow it, or its header checks, its payload does not and only
// zeros follow. It is dropped, with a warning that says what is and is not
// known about it. Everything else that is missing or damaged is ErrCorrupt,
// naming the segment, and Open refuses the store: a segment shorter or
// longer than its header says (cut short, truncated to zero), a missing
// segment (segment M, one between two others, or the one an end frame
// names), a frame whose seq is not the next one (frames cut at a frame
// boundary are missing: no "end of the data" is trusted unless everything
// the checkpoints and end frames promise is there), a damaged header (never
// taken for the end of the data), a damaged frame followed by data, and
// anything but zeros after the end.
//
// Segments of the older format (no header, 12-byte frame headers without a
// seq) are replayed by readLegacySegment, with the older rules, when the
// store file has no journal record (it was written by a build before this
// format).

const (
	journalExt       = ".wal."
	segmentSize      = 4 << 20
	firstSegmentSize = 1 << 20 // a run's first (startJournal)
	segHeaderBytes   = 32
	frameHeaderBytes = 24
	endFrameBytes    = frameHeaderBytes + 8
	journalVersion   = 2
	frameBatch       = 1 // a frame's kind: a batch of mutations
	frameEnd         = 2 // a frame's kind: the segment ends, the next follows
	kindPut          = 1 // a mutation's kind
	kindDelete       = 2
	kindDSPut        = 3 // a deferred datastore write (bolt_deferred.go)
	kindDSDelete     = 4
)

var segMagic = []byte("cnjournl")

type journalMutation struct {
	put  []byte // encoded record, or nil for a delete; datastore put: the value
	id   string // the action's id (of the record put, or of the one deleted)
	seq  uint64 // put: the record's seq
	kind byte
	task string // datastore mutations: the task and key
	key  []byte
	// framed, when set (ApplyActions), is put framed for the seqs bucket
	// (its checksum, then put: see encodeActions).
	framed []byte
}

// data is what a mutation's frame entry carries.
func (m journalMutation) data() []byte {
	return m.appendData(make([]byte, 0, m.dataLen()))
}

// dataLen is len(m.data()).
func (m journalMutation) dataLen() int {
	switch m.kind {
	case kindDelete:
		return len(m.id)
	case kindDSPut:
		return uvarintLen(len(m.task)) + len(m.task) + uvarintLen(len(m.key)) + len(m.key) + len(m.put)
	case kindDSDelete:
		return uvarintLen(len(m.task)) + len(m.task) + len(m.key)
	}
	return len(m.put)
}

// appendData appends m.data() to b.
func (m journalMutation) appendData(b []byte) []byte {
	switch m.kind {
	case kindDelete:
		return append(b, m.id...)
	case kindDSPut, kindDSDelete:
		b = binary.AppendUvarint(b, uint64(len(m.task)))
		b = append(b, m.task...)
		if m.kind == kindDSDelete {
			return append(b, m.key...)
		}
		b = binary.AppendUvarint(b, uint64(len(m.key)))
		b = append(b, m.key...)
		return append(b, m.put...)
	}
	return append(b, m.put...)
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return len(binary.AppendUvarint(b[:0], uint64(n)))
}

// encodeSegHeader returns the header of a segment of size bytes.
func encodeSegHeader(size int64) []byte {
	b := make([]byte, segHeaderBytes)
	copy(b, segMagic)
	binary.BigEndian.PutUint32(b[8:12], journalVersion)
	binary.BigEndian.PutUint64(b[16:24], uint64(size))
	binary.BigEndian.PutUint32(b[28:32], crc32.Checksum(b[:28], castagnoli))
	return b
}

// maxFramePayload is the most payload one frame carries: its length is a
// uint32. A variable so that a test can lower it (frameChunks).
var maxFramePayload = math.MaxUint32

// frameChunks splits muts, in order, into runs whose batch frame (of
// queue) stays within maxFramePayload, so that no frame's length is cut
// to 32 bits (a group commit of 65 submissions of 64 MiB each is over
// 4 GiB, and a frame whose length wrapped made the next Open refuse the
// store). Nearly every batch is one run, muts itself. A mutation that
// alone does not fit is refused (ErrInvalid): none can, at the real
// limit, since a record or a value is at most MaxValueSize.
func frameChunks(queue string, muts []journalMutation) ([][]journalMutation, error) {
	head := binary.MaxVarintLen64*2 + len(queue) // queue and count, as encodeFrameInto counts them
	var (
		out   [][]journalMutation
		start int
		size  = head
	)
	for i, m := range muts {
		n := 1 + binary.MaxVarintLen64 + m.dataLen()
		if head+n > maxFramePayload {
			return nil, fmt.Errorf("a change of %d bytes does not fit in a journal frame (at most %d bytes): %w", m.dataLen(), maxFramePayload, ErrInvalid)
		}
		if size+n > maxFramePayload {
			out = append(out, muts[start:i])
			start, size = i, head
		}
		size += n
	}
	return append(out, muts[start:]), nil
}

// encodeFrame builds the batch frame of one ApplyActions call. Its seq,
// and with it its header checksum, are set when it is appended (setSeq).
func encodeFrame(queue string, muts []journalMutation) []byte {
	return encodeFrameInto(nil, queue, muts)
}

// encodeFrameInto is encodeFrame in dst's memory when it has room (the
// store reuses one buffer for its frames: a frame is garbage once
// written). Entries are written in place, without a copy of each.
func encodeFrameInto(dst []byte, queue string, muts []journalMutation) []byte {
	size := frameHeaderBytes + binary.MaxVarintLen64*2 + len(queue)
	for _, m := range muts {
		size += 1 + binary.MaxVarintLen64 + m.dataLen()
	}
	b := dst[:0]
	if cap(b) < size {
		b = make([]byte, 0, size)
	}
	b = b[:frameHeaderBytes]
	clear(b)
	b = binary.AppendUvarint(b, uint64(len(queue)))
	b = append(b, queue...)
	b = binary.AppendUvarint(b, uint64(len(muts)))
	for _, m := range muts {
		b = append(b, m.kind)
		b = binary.AppendUvarint(b, uint64(m.dataLen()))
		b = m.appendData(b)
	}
	frameHead(b, frameBatch)
	return b
}

// endFrame builds the frame that ends a segment: next is the number of the
// segment that follows.
func endFrame(seq, next uint64) []byte {
	b := make([]byte, endFrameBytes)
	binary.BigEndian.PutUint64(b[frameHeaderBytes:], next)
	frameHead(b, frameEnd)
	setSeq(b, seq)
	return b
}

// frameHead fills a frame's length, kind and payload checksum.
func frameHead(b []byte, kind byte) {
	payload := b[frameHeaderBytes:]
	binary.BigEndian.PutUint32(b[0:4], uint32(len(payload)))
	b[4] = kind
	binary.BigEndian.PutUint32(b[16:20], crc32.Checksum(payload, castagnoli))
}

// setSeq sets a frame's seq and header checksum.
func setSeq(b []byte, seq uint64) {
	binary.BigEndian.PutUint64(b[8:16], seq)
	binary.BigEndian.PutUint32(b[20:24], crc32.Checksum(b[0:20], castagnoli))
}

// decodeFrame reads a batch frame's payload.
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
			muts = append(muts, journalMutation{kind: kindPut, put: data, id: a.GetId(), seq: a.GetStatus().GetSeq()})
		case kindDelete:
			muts = append(muts, journalMutation{kind: kindDelete, id: string(data)})
		case kindDSPut, kindDSDelete:
			m, err := decodeDSMutation(kind, data)
			if err != nil {
				return "", nil, err
			}
			muts = append(muts, m)
		default:
			return "", nil, fmt.Errorf("unknown mutation kind %d", kind)
		}
	}
	if r.Len() != 0 {
		return "", nil, errors.New("trailing bytes")
	}
	return string(q), muts, nil
}

// decodeDSMutation reads a datastore mutation's data.
func decodeDSMutation(kind byte, data []byte) (journalMutation, error) {
	n, k := binary.Uvarint(data)
	if k <= 0 || n == 0 || n > uint64(len(data)-k) {
		return journalMutation{}, errors.New("bad datastore name")
	}
	m := journalMutation{kind: kind, task: string(data[k : k+int(n)])}
	rest := data[k+int(n):]
	if kind == kindDSDelete {
		if len(rest) == 0 {
			return journalMutation{}, errors.New("empty datastore key")
		}
		m.key = rest
		return m, nil
	}
	n, k = binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest)-k) {
		return journalMutation{}, errors.New("bad datastore key")
	}
	m.key, m.put = rest[k:k+int(n)], rest[k+int(n):]
	if m.put == nil {
		m.put = []byte{}
	}
	return m, nil
}

// journalRecord is what the store file says about the journal, written in
// the same transaction as what it describes (the replay at Open, each
// checkpoint, a clean close): frames up to seq S are folded into the file;
// segments numbered below M hold nothing else (and are deleted); segment M
// is where the journal went on, and must be there when Exists is set.
type journalRecord struct {
	M, S   uint64
	Exists bool
}

const journalRecordBytes = 8 + 8 + 1 + 4

func (r journalRecord) encode() []byte {
	b := make([]byte, 0, journalRecordBytes)
	b = binary.BigEndian.AppendUint64(b, r.M)
	b = binary.BigEndian.AppendUint64(b, r.S)
	if r.Exists {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeJournalRecord(b []byte) (journalRecord, bool) {
	if len(b) != journalRecordBytes || b[16] > 1 ||
		crc32.Checksum(b[:17], castagnoli) != binary.BigEndian.Uint32(b[17:]) {
		return journalRecord{}, false
	}
	return journalRecord{M: binary.BigEndian.Uint64(b), S: binary.BigEndian.Uint64(b[8:]), Exists: b[16] == 1}, true
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
		if !e.Type().IsRegular() {
			// A segment is read at Open: a FIFO would be waited
			// on for ever (start-up hung, without a word), a device
			// read without end. A symbolic link is taken for what it
			// points to.
			p := filepath.Join(dir, e.Name())
			fi, err := os.Stat(p)
			if err != nil {
				return nil, err
			}
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("journal segment %s is not a regular file (%s): %w", p, readfile.Kind(fi.Mode()), ErrFormat)
			}
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// tornFrame describes the frame dropped at the end of the data.
type tornFrame struct {
	segment string // its segment's path
	offset  int    // where the frame starts
	bytes   int    // how many bytes of the file it occupies
	seq     uint64 // its seq, when its header checks (0: unknown)
}

// segmentData is one segment file as read at Open.
type segmentData struct {
	n    uint64
	path string
	data []byte
}

// replayFrame is one batch frame to apply.
type replayFrame struct {
	seq   uint64
	queue string
	muts  []journalMutation
}

// frameSpan is where a frame that replay accounted for lies in its
// segment: applied, folded (seq <= S) or dropped as torn.
type frameSpan struct {
	seg      int // index in the segments given
	off, end int
}

// replay is what replayJournal found.
type replay struct {
	frames  []replayFrame // batches with seq > S, in order
	lastSeq uint64        // the seq of the last frame of the data (S when there is none)
	torn    *tornFrame
	chain   []segmentData // the segments read (numbers >= M)
	folded  []segmentData // segments below M: folded, to delete
	spans   []frameSpan   // every frame accounted for (for the fuzz test)
}

// replayJournal works out, from the journal record (nil when the store
// file has none) and the segment files present (sorted by number), what a
// crash left to replay, or why the journal cannot be trusted (ErrCorrupt,
// naming the segment). pathOf names segment n in errors. It reads nothing
// else and changes nothing.
func replayJournal(rec *journalRecord, segs []segmentData, pathOf func(uint64) string) (*replay, error) {
	r := &replay{}
	var m, s uint64 = 1, 0
	if rec != nil {
		m, s = rec.M, rec.S
	}
	for _, sd := range segs {
		if rec != nil && sd.n < m {
			r.folded = append(r.folded, sd)
		} else {
			r.chain = append(r.chain, sd)
		}
	}
	if rec != nil && rec.Exists && (len(r.chain) == 0 || r.chain[0].n != m) {
		return nil, fmt.Errorf("journal segment %s is missing (the store file says the journal goes on there; it may have held acknowledged changes): %w",
			pathOf(m), ErrCorrupt)
	}
	for i := 1; i < len(r.chain); i++ {
		if prev, cur := r.chain[i-1].n, r.chain[i].n; cur != prev+1 {
			return nil, fmt.Errorf("journal segment %s is missing (between %s and %s; it may have held acknowledged changes): %w",
				pathOf(prev+1), r.chain[i-1].path, r.chain[i].path, ErrCorrupt)
		}
	}
	expect := s + 1 // the seq of the next frame
	// The first segment (M) may begin with frames a checkpoint folded
	// (seq <= S): a checkpoint does not start a new segment.
	flexible := rec != nil
	ended := "" // a segment whose data ended without an end frame
	for i, sd := range r.chain {
		if rec == nil && !bytes.HasPrefix(sd.data, segMagic) {
			// An older build's segment (no record, no header).
			if err := readLegacySegment(sd, r, &ended); err != nil {
				return nil, err
			}
			continue
		}
		spans := len(r.spans)
		seq, next, err := readSegment(i, sd, s, expect, flexible, r, ended)
		if err != nil {
			return nil, err
		}
		flexible = flexible && len(r.spans) == spans // until a frame is read
		expect = seq
		switch {
		case next != 0 && i+1 == len(r.chain):
			return nil, fmt.Errorf("journal segment %s is missing (%s ends by naming it as the next; it may have held acknowledged changes): %w",
				pathOf(next), sd.path, ErrCorrupt)
		case next == 0 && ended == "":
			ended = sd.path
		}
	}
	r.lastSeq = expect - 1
	if rec != nil && r.lastSeq < s && (r.torn == nil || r.torn.seq != s || r.lastSeq+1 != s) {
		// Frames up to S were written (and folded): data that ends
		// before them was damaged at its end, so frames after S may be
		// gone too.
		last := "the first segment's start"
		if len(r.chain) > 0 {
			last = r.chain[len(r.chain)-1].path
		}
		return nil, fmt.Errorf("journal %s: the data ends with frame %d, but frames up to %d were written: its end was lost (acknowledged changes may be lost): %w",
			last, r.lastSeq, s, ErrCorrupt)
	}
	return r, nil
}

// readSegment reads segment sd (index i in the chain) whose first frame
// should have seq expect (or, flexible, any seq up to it: the first frame
// of segment M may be folded already); frames with seq <= s are folded.
// ended names an earlier segment whose data ended without an end frame:
// then this one must hold no frame. It returns the seq the next frame
// should have, and the next segment's number if sd ends with an end frame.
func readSegment(i int, sd segmentData, s, expect uint64, flexible bool, r *replay, ended string) (uint64, uint64, error) {
	data, path := sd.data, sd.path
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("journal %s: %s: %w", path, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if err := checkSegHeader(path, data[:min(len(data), segHeaderBytes)], int64(len(data))); err != nil {
		return 0, 0, err
	}
	off := segHeaderBytes
	for off < len(data) {
		if off+frameHeaderBytes > len(data) {
			return expect, 0, checkZerosAt(path, data, off) // no frame starts so close to the end
		}
		hdr := data[off : off+frameHeaderBytes]
		if isZeros(hdr) {
			return expect, 0, checkZerosAt(path, data, off)
		}
		if ended != "" {
			return 0, 0, corrupt("holds frames, but the journal's data ended in %s before it (acknowledged changes may be lost)", ended)
		}
		if crc32.Checksum(hdr[0:20], castagnoli) != binary.BigEndian.Uint32(hdr[20:24]) {
			// A header that does not check: the last frame, torn, only if
			// nothing but zeros follows it (its length cannot be trusted
			// to skip a payload).
			if err := checkZerosAt(path, data, off+frameHeaderBytes); err != nil {
				return 0, 0, fmt.Errorf("%w (the frame header at offset %d does not match its checksum)", err, off)
			}
			r.torn = &tornFrame{segment: path, offset: off, bytes: frameHeaderBytes}
			r.spans = append(r.spans, frameSpan{i, off, off + frameHeaderBytes})
			return expect, 0, nil
		}
		n := int(binary.BigEndian.Uint32(hdr[0:4]))
		kind, seq := hdr[4], binary.BigEndian.Uint64(hdr[8:16])
		end := off + frameHeaderBytes + n
		if flexible && seq >= 1 && seq < expect {
			expect = seq
		}
		flexible = false
		switch {
		case kind != frameBatch && kind != frameEnd || !isZeros(hdr[5:8]):
			return 0, 0, corrupt("the frame at offset %d is of an unknown kind", off)
		case n > len(data)-off-frameHeaderBytes:
			return 0, 0, corrupt("the frame at offset %d runs past the end of the segment", off)
		case seq != expect:
			return 0, 0, corrupt("the frame at offset %d has seq %d where %d was expected (frames %s are missing: acknowledged changes may be lost)",
				off, seq, expect, seqRange(expect, seq))
		}
		if crc32.Checksum(data[off+frameHeaderBytes:end], castagnoli) != binary.BigEndian.Uint32(hdr[16:20]) {
			// Only zeros may follow the frame being written at the crash.
			if err := checkZerosAt(path, data, end); err != nil {
				return 0, 0, fmt.Errorf("%w (the frame at offset %d does not match its checksum)", err, off)
			}
			r.torn = &tornFrame{segment: path, offset: off, bytes: end - off, seq: seq}
			r.spans = append(r.spans, frameSpan{i, off, end})
			return expect, 0, nil
		}
		r.spans = append(r.spans, frameSpan{i, off, end})
		expect++
		payload := data[off+frameHeaderBytes : end]
		if kind == frameEnd {
			if n != 8 || binary.BigEndian.Uint64(payload) != sd.n+1 {
				return 0, 0, corrupt("the end frame at offset %d does not name the next segment", off)
			}
			return expect, sd.n + 1, checkZerosAt(path, data, end)
		}
		q, muts, err := decodeFrame(payload)
		if err != nil {
			return 0, 0, fmt.Errorf("journal %s: frame at offset %d: %w: %w", path, off, ErrCorrupt, err)
		}
		if seq > s {
			r.frames = append(r.frames, replayFrame{seq: seq, queue: q, muts: muts})
		}
		off = end
	}
	return expect, 0, nil
}

// checkSegHeader checks the header h (the first bytes, up to
// segHeaderBytes) of the segment at path, whose file holds size bytes: a
// header of this format, which says the segment was made with size bytes.
func checkSegHeader(path string, h []byte, size int64) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("journal %s: %s: %w", path, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if size < segHeaderBytes || len(h) < segHeaderBytes {
		return corrupt("cut short to %d bytes, less than its header (acknowledged changes may be lost)", size)
	}
	switch {
	case !bytes.Equal(h[:8], segMagic):
		return corrupt("no journal segment header")
	case crc32.Checksum(h[:28], castagnoli) != binary.BigEndian.Uint32(h[28:32]):
		return corrupt("its header does not match its checksum")
	case binary.BigEndian.Uint32(h[8:12]) != journalVersion:
		return fmt.Errorf("journal %s: format version %d; this build reads version %d: %w", path, binary.BigEndian.Uint32(h[8:12]), journalVersion, ErrVersion)
	case !isZeros(h[12:16]) || !isZeros(h[24:28]):
		return corrupt("its header has unknown fields set")
	}
	if made := binary.BigEndian.Uint64(h[16:24]); made != uint64(size) {
		if uint64(size) < made {
			return corrupt("cut short: %d bytes of %d (acknowledged changes may be lost)", size, made)
		}
		return corrupt("%d bytes, but it was made with %d", size, made)
	}
	return nil
}

// readSegmentFile reads the journal segment at path whole, as the replay
// takes it, once its first bytes have said that it is no larger than the
// journal made it: as large as its header says (checkSegHeader), or, for
// a file without a header when an older build's segment may be there
// (legacy), at most segmentSize or as large as its first frame and a
// frame header of zeros, as that build made them. A file larger than that
// (one named like a segment that is none, a segment extended by hand) is
// refused unread, naming it (ErrCorrupt): read whole, a large one took
// all the memory at start-up before a word was said. A header that is
// wrong in another way is refused as readSegment would refuse it.
func readSegmentFile(path string, legacy bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	head := make([]byte, min(size, segHeaderBytes))
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, err
	}
	if !legacy || bytes.HasPrefix(head, segMagic) {
		if err := checkSegHeader(path, head, size); err != nil {
			return nil, err
		}
	} else if limit := legacySegmentLimit(head); size > limit {
		return nil, fmt.Errorf("journal %s: %d bytes, larger than any journal segment (at most %d bytes, from its first bytes): not a segment of this store; move it out of the folder: %w",
			path, size, limit, ErrCorrupt)
	}
	data := make([]byte, size)
	n, err := io.ReadFull(f, data[copy(data, head):])
	if err == io.ErrUnexpectedEOF {
		return data[:len(head)+n], nil // it shrank meanwhile: the replay judges what is there
	}
	return data, err
}

// legacySegmentLimit is the most bytes an older build's segment that
// begins with head held: segmentSize, or its first frame (when its header
// checks) and the frame header of zeros that ended it.
func legacySegmentLimit(head []byte) int64 {
	limit := int64(segmentSize)
	if len(head) >= legacyFrameHeaderBytes && crc32.Checksum(head[0:8], castagnoli) == binary.BigEndian.Uint32(head[8:12]) {
		limit = max(limit, 2*legacyFrameHeaderBytes+int64(binary.BigEndian.Uint32(head[0:4])))
	}
	return limit
}

func seqRange(from, to uint64) string {
	if to < from {
		return fmt.Sprintf("from %d", from)
	}
	if to == from+1 {
		return strconv.FormatUint(from, 10)
	}
	return fmt.Sprintf("%d to %d", from, to-1)
}

func isZeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func checkZerosAt(path string, data []byte, from int) error {
	for i := from; i < len(data); i++ {
		if data[i] != 0 {
			return fmt.Errorf("journal %s: unexpected data at offset %d after the end of the journal: %w", path, i, ErrCorrupt)
		}
	}
	return nil
}

// The older segment format: frames of length:uint32 crc:uint32 hcrc:uint32
// payload, then zeros, in plain files that appends extended.
const legacyFrameHeaderBytes = 12

// readLegacySegment replays a segment of the older format with its rules:
// the last frame of the data is dropped as torn when its payload fails its
// checksum and only zeros follow, when it runs past the end of the file, or
// when its header does not check and only zeros follow. It cannot tell
// frames lost at the end of a segment from a segment that ended there.
func readLegacySegment(sd segmentData, r *replay, ended *string) error {
	data, path := sd.data, sd.path
	off := 0
	torn := func(n int) error {
		r.torn = &tornFrame{segment: path, offset: off, bytes: n}
		*ended = path
		return nil
	}
	for off < len(data) {
		if off+legacyFrameHeaderBytes > len(data) {
			if checkZerosAt(path, data, off) != nil {
				return torn(len(data) - off)
			}
			break
		}
		hdr := data[off : off+legacyFrameHeaderBytes]
		if isZeros(hdr) {
			if err := checkZerosAt(path, data, off); err != nil {
				return err
			}
			break
		}
		if *ended != "" {
			return fmt.Errorf("journal %s: holds frames, but the journal's data ended in %s before it: %w", path, *ended, ErrCorrupt)
		}
		if crc32.Checksum(hdr[0:8], castagnoli) != binary.BigEndian.Uint32(hdr[8:12]) {
			if err := checkZerosAt(path, data, off+legacyFrameHeaderBytes); err != nil {
				return fmt.Errorf("%w (the frame header at offset %d does not match its checksum)", err, off)
			}
			return torn(len(data) - off)
		}
		n := int(binary.BigEndian.Uint32(hdr[0:4]))
		end := off + legacyFrameHeaderBytes + n
		if n > len(data)-off-legacyFrameHeaderBytes {
			return torn(len(data) - off)
		}
		if crc32.Checksum(data[off+legacyFrameHeaderBytes:end], castagnoli) != binary.BigEndian.Uint32(hdr[4:8]) {
			if err := checkZerosAt(path, data, end); err != nil {
				return fmt.Errorf("%w (frame at offset %d does not match its checksum)", err, off)
			}
			return torn(end - off)
		}
		q, muts, err := decodeFrame(data[off+legacyFrameHeaderBytes : end])
		if err != nil {
			return fmt.Errorf("journal %s: frame at offset %d: %w: %w", path, off, ErrCorrupt, err)
		}
		r.frames = append(r.frames, replayFrame{queue: q, muts: muts})
		off = end
	}
	return nil
}

// journal appends frames to segment files. Appends and rotation are
// serialised by mu; the next segment is prepared (zero-filled) on a
// goroutine so that rotation rarely waits.
type journal struct {
	dir, base string

	mu        sync.Mutex
	cur       *os.File
	curPath   string
	curN      uint64
	off       int64    // where the next frame goes in cur
	size      int64    // cur's size
	seq       uint64   // the seq of the last frame written
	segs      []uint64 // the segments in use, cur last (not the prepared one)
	ready     chan preparedSeg
	preparing bool         // a preparation of segment curN+1 is under way (its result goes to ready)
	spare     *preparedSeg // segment curN+1, made, not yet in use
	broken    error        // a failed write or fdatasync left cur in a state appends cannot build on
	closed    bool
	sealed    bool // appends are refused (seal); the files stay open
	// writeAt writes into cur (frames, end frames, undos); nil: WriteAt.
	// Tests set it to fail writes as a file system without fallocate
	// does when the disk is full.
	writeAt func(f *os.File, b []byte, off int64) (int, error)
	// syncAt syncs cur (after a frame or an end frame); nil: fdatasync.
	// Tests set it to fail as an fdatasync does that finds no room (NFS,
	// thin-provisioned storage).
	syncAt func(f *os.File) error
}

func (j *journal) write(b []byte, off int64) (int, error) {
	if j.writeAt != nil {
		return j.writeAt(j.cur, b, off)
	}
	return j.cur.WriteAt(b, off)
}

// syncLocked fdatasyncs cur after a frame (or end frame) was written
// into it. A failure for lack of room (ENOSPC or EDQUOT from a file system
// that allocates at writeback: NFS, thin-provisioned storage) is
// notWritten, and the journal takes nothing more (broken): the frame
// counts for nothing and the store folds the journal from memory
// (suspendJournal), as when a frame's write finds no room. Any other
// failure is a syncError: the store fails (ErrFailed), and the journal
// takes nothing more either (broken): an append already on its way when
// the store failed (it looked before this one released applyMu) is
// refused here, not written at the failed frame's offset.
//
// That is safe because a frame whose fdatasync failed is never relied on
// and never built on. Its bytes may or may not reach the disk, whole or
// in part, now or later, whatever a retried fdatasync says (PostgreSQL's
// "fsyncgate"): so it is not acknowledged, no frame is written after it
// (the next would go at its offset and could leave its leftovers after
// the data's end), and the fold records the next segment as the
// journal's start (journalRecord{M: curN+1}), so that no replay reads
// this segment again, whatever is in it. Every acknowledged frame was
// synced before its append returned and is in memory, which the fold
// writes into the store file with bbolt's own fdatasync. A crash before
// the fold replays this segment as it is on disk: every acknowledged
// frame, then the failed one whole (an unacknowledged batch that may
// have been committed, as with any error), torn (ignored), or gone.
func (j *journal) syncLocked() error {
	var err error
	if j.syncAt != nil {
		err = j.syncAt(j.cur)
	} else {
		err = fdatasync(j.cur)
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("journal: sync %s: %w", j.curPath, err)
	j.broken = err
	if spaceError(err) {
		return &notWritten{err}
	}
	return &syncError{err}
}

type preparedSeg struct {
	f    *os.File
	path string // its name once in place (f was opened under a temporary one)
	size int64
	err  error
}

// startJournal makes segment n, whole, and returns a journal whose next
// frame has seq after+1 and goes there.
//
// Segment n is prepared (zero-filled) like the later ones, not only
// allocated: into allocated space that was never written, each append
// changes the file's extents, so its fdatasync writes the inode too (about
// twice the time of one into written blocks, on ext4). It is smaller
// (firstSegmentSize), so that start-up waits for 1 MiB of zeros, not 4:
// the next segment is prepared in the background meanwhile, as usual.
func startJournal(dir, base string, n, after uint64) (*journal, error) {
	j := &journal{dir: dir, base: base, seq: after, ready: make(chan preparedSeg, 1)}
	p := j.prepare(n, firstSegmentSize)
	if p.err != nil {
		return nil, p.err
	}
	j.cur, j.curPath, j.curN, j.off, j.size = p.f, p.path, n, segHeaderBytes, p.size
	j.segs = []uint64{n}
	return j, nil
}

// create makes segment n of size bytes: its header, then space allocated
// (without writing it, so creating one is cheap, but appends into it cost
// more than into a prepared one: each fdatasync also writes the inode),
// synced and renamed into place. For when the prepared segment is not
// ready or too small (nextLocked).
func (j *journal) create(n uint64, size int64) preparedSeg {
	return j.makeSegment(n, size, func(f *os.File) error {
		if err := allocate(f, size); err != nil {
			return err
		}
		_, err := f.WriteAt(encodeSegHeader(size), 0)
		return err
	})
}

// zeroChunk is what prepare writes after a segment's header. It is never
// written to, so it costs no memory (it stays the kernel's zero page) and
// preparing a segment allocates nothing of its size.
var zeroChunk [1 << 20]byte

// prepare makes segment n of size bytes filled with zeros (so appends
// overwrite written blocks), synced and renamed into place.
func (j *journal) prepare(n uint64, size int64) preparedSeg {
	return j.makeSegment(n, size, func(f *os.File) error {
		if _, err := f.Write(encodeSegHeader(size)); err != nil {
			return err
		}
		for written := int64(segHeaderBytes); written < size; {
			k, err := f.Write(zeroChunk[:min(int64(len(zeroChunk)), size-written)])
			if err != nil {
				return err
			}
			written += int64(k)
		}
		return nil
	})
}

// makeSegment builds segment n under a temporary name (so a half-made file
// is never replayed) with fill, syncs it and renames it into place.
func (j *journal) makeSegment(n uint64, size int64, fill func(*os.File) error) preparedSeg {
	final := filepath.Join(j.dir, segmentName(j.base, n))
	tmp := final + ".tmp"
	// A file left at tmp (a crash while one was made) is removed, and tmp
	// made anew with O_EXCL, which follows no symbolic link: opened with
	// O_TRUNC, a link there had the segment written into the file it
	// points to, outside the data folder.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return preparedSeg{err: fmt.Errorf("journal: create %s: %w", final, err)}
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return preparedSeg{err: fmt.Errorf("journal: create %s: %w", final, err)}
	}
	fail := func(err error) preparedSeg {
		_ = f.Close()
		_ = os.Remove(tmp)
		return preparedSeg{err: fmt.Errorf("journal: create %s: %w", final, err)}
	}
	if err := fill(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := syncDir(j.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(final)
		return preparedSeg{err: err}
	}
	return preparedSeg{f: f, path: final, size: size}
}

func (j *journal) prepareAsync() {
	n := j.curN + 1
	j.preparing = true
	go func() { j.ready <- j.prepare(n, segmentSize) }()
}

// nextLocked returns segment curN+1 of at least size bytes: the spare, the
// prepared one (waiting for it if needed), or a new one. A segment too
// small for a large frame is replaced by one of the frame's size, under the
// same number: numbers follow the order of use.
func (j *journal) nextLocked(size int64) (preparedSeg, error) {
	drop := func(p preparedSeg) {
		if p.f != nil {
			_ = p.f.Close()
			_ = os.Remove(p.path)
		}
	}
	if p := j.spare; p != nil {
		j.spare = nil
		if p.size >= size {
			return *p, nil
		}
		drop(*p)
	}
	if j.preparing {
		p := <-j.ready
		j.preparing = false
		if p.err == nil && p.size >= size {
			return p, nil
		}
		drop(p)
	}
	p := j.create(j.curN+1, size)
	return p, p.err
}

// rotateLocked moves to segment curN+1, for a frame of need bytes: it
// makes sure that segment exists, then ends the current one with an end
// frame naming it (synced), so that a replay knows the next segment must
// be there.
func (j *journal) rotateLocked(need int64) error {
	size := int64(segmentSize)
	if need+segHeaderBytes+endFrameBytes > size {
		size = need + segHeaderBytes + endFrameBytes
	}
	p, err := j.nextLocked(size)
	if err != nil {
		return err
	}
	end := endFrame(j.seq+1, j.curN+1)
	if _, err := j.write(end, j.off); err != nil {
		j.undoLocked(len(end))
		j.spare = &p
		return fmt.Errorf("journal: end %s: %w", j.curPath, err)
	}
	if err := j.syncLocked(); err != nil {
		j.spare = &p
		return err
	}
	j.seq++
	_ = j.cur.Close()
	j.cur, j.curPath, j.curN, j.off, j.size = p.f, p.path, j.curN+1, segHeaderBytes, p.size
	j.segs = append(j.segs, j.curN)
	return nil
}

// undoLocked zeros what a failed write of n bytes at off may have left, so
// that the next frame, written there, is not followed by leftovers. If
// that fails too, appends stop (broken): the segment's tail is unknown.
func (j *journal) undoLocked(n int) {
	if _, err := j.write(make([]byte, n), j.off); err != nil {
		j.broken = fmt.Errorf("journal: %s: a failed write could not be undone: %w", j.curPath, err)
	}
}

// append writes one frame durably and returns its seq. hooks run the
// fault injector's steps.
func (j *journal) append(frame []byte, beforeWrite func() error, afterSync func() error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken != nil {
		if spaceError(j.broken) {
			return &notWritten{j.broken} // see the frame's write below
		}
		return j.broken
	}
	if j.closed || j.sealed {
		return errJournalClosed
	}
	if j.off+int64(len(frame))+endFrameBytes > j.size {
		if err := j.rotateLocked(int64(len(frame))); err != nil {
			var se *syncError
			var nw *notWritten
			if errors.As(err, &se) || errors.As(err, &nw) || j.broken != nil && !spaceError(err) {
				return err
			}
			return &notWritten{err} // the frame was not written (and the journal is whole, or see below)
		}
	}
	if err := beforeWrite(); err != nil {
		return err
	}
	setSeq(frame, j.seq+1)
	if _, err := j.write(frame, j.off); err != nil {
		// Part of the frame may be in the file: writes into allocated
		// space fail on a full disk where space cannot be allocated
		// (a file system without fallocate, where create's segments
		// are sparse, or one that copies on write).
		j.undoLocked(len(frame))
		err = fmt.Errorf("journal: write %s: %w", j.curPath, err)
		if spaceError(err) {
			// For lack of room, as a rotation that finds none: the
			// frame counts for nothing. Either its bytes were undone
			// (the journal is whole), or that failed too (broken): then
			// they are the torn tail that replay ignores, followed by
			// zeros (the segment's prepared or unwritten space), and
			// nothing is appended after them. The store goes on without
			// the journal (suspendJournal), which it folds from memory.
			return &notWritten{err}
		}
		return err
	}
	if err := j.syncLocked(); err != nil {
		return err
	}
	j.seq++
	j.off += int64(len(frame))
	if !j.preparing && j.spare == nil && j.off > j.size/4 {
		j.prepareAsync()
	}
	return afterSync()
}

// errJournalClosed refuses an append once the journal is sealed or closed:
// nothing of the frame was written.
var errJournalClosed = errors.New("journal: closed")

// seal makes the journal refuse appends from now on (errJournalClosed),
// its files left open. Close seals it before its final checkpoint, so that
// every frame appended is one that checkpoint folds: one appended after
// it was acknowledged, and then recorded as folded by dropJournal (which
// names the last frame written) and deleted with its segment.
func (j *journal) seal() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sealed = true
}

// notWritten marks an append whose frame counts for nothing: the next
// segment could not be made (no room, no file descriptor), and nothing of
// the frame is on disk, and later appends may succeed; or the frame's
// write failed for lack of room, and what it left was undone or is a torn
// tail after which the journal takes no frame (broken); or its fdatasync
// (or the end frame's) failed for lack of room, and the journal takes no
// frame after it (broken; see syncLocked).
type notWritten struct{ err error }

func (e *notWritten) Error() string { return e.err.Error() }
func (e *notWritten) Unwrap() error { return e.err }

// syncError marks a failed fdatasync: the frame's fate is unknown.
type syncError struct{ err error }

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// position returns the current segment and the seq of the last frame
// written: a checkpoint that folds everything written so far records them.
// Callers hold the store's applyMu, so no append runs meanwhile.
func (j *journal) position() (uint64, uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.curN, j.seq
}

// drop deletes the segments numbered below m, which a checkpoint folded.
func (j *journal) drop(m uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	removed := false
	for _, n := range j.segs {
		if n >= m {
			continue
		}
		if err := os.Remove(filepath.Join(j.dir, segmentName(j.base, n))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: remove checkpointed segment: %w", err)
		}
		removed = true
	}
	j.segs = slices.DeleteFunc(j.segs, func(x uint64) bool { return x < m })
	if !removed {
		return nil
	}
	return syncDir(j.dir)
}

// close closes the journal's files, leaving them on disk: the store
// removes them once it has recorded that they are folded.
func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	j.closed = true
	if j.cur != nil {
		_ = j.cur.Close()
	}
	if j.preparing {
		if p := <-j.ready; p.f != nil {
			_ = p.f.Close()
		}
		j.preparing = false
	}
	if j.spare != nil && j.spare.f != nil {
		_ = j.spare.f.Close()
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
