package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/connectorhq/connector/messages"
)

// FuzzJournalReplay: whatever bytes the journal's segments hold, and
// whatever the store file's journal record says, replay either refuses
// (ErrCorrupt or ErrVersion, never a panic) or recovers, and when it
// recovers it has lost no frame that checksums: every frame whose header
// and payload match their checksums, wherever it starts in a segment that
// replay reads, lies within a frame replay accounted for (applied, folded
// by a checkpoint, or dropped as the torn last frame). The frames it
// applies come in increasing seq, after the record's.
//
// The input is split into up to three segments: its first two bytes (each
// little-endian uint16 pair) give the first two segments' lengths, the
// rest is the third. flags picks the record: bit 0 none (an older store),
// bit 1 M = 2 instead of 1, bit 2 Exists, bit 3 a gap in the segments'
// numbers; bit 4 makes every checksum right first (the segment header's,
// with its size, and those of the frames found by following the lengths),
// so that the search reaches frames that pass them. The seed inputs are
// replayed by every go test run.
func FuzzJournalReplay(f *testing.F) {
	put := func(id string, seq uint64) []journalMutation {
		b, err := encodeAction("fetch", rec(id, seq, messages.State_STATE_QUEUED))
		if err != nil {
			f.Fatal(err)
		}
		return []journalMutation{{kind: kindPut, put: b, id: id, seq: seq}}
	}
	frame := func(seq uint64, id string) []byte {
		b := encodeFrame("fetch", put(id, seq))
		setSeq(b, seq)
		return b
	}
	join := func(segs ...[]byte) []byte {
		var out []byte
		for i := 0; i < 2; i++ {
			n := 0
			if i < len(segs) {
				n = len(segs[i])
			}
			out = binary.LittleEndian.AppendUint16(out, uint16(n))
		}
		for _, s := range segs {
			out = append(out, s...)
		}
		return out
	}
	three := segmentBytes(512, frame(1, "a"), frame(2, "b"), frame(3, "c"))
	torn := segmentBytes(512, frame(1, "a"), frame(2, "b"), frame(3, "c")[:40])
	ended := segmentBytes(256, frame(1, "a"), endFrame(2, 2))
	f.Add(uint64(0), byte(4), join(three))
	f.Add(uint64(0), byte(4), join(torn))
	f.Add(uint64(1), byte(4), join(three))
	f.Add(uint64(0), byte(4), join(ended, segmentBytes(256, frame(3, "c"))))
	f.Add(uint64(0), byte(4), join(ended, segmentBytes(256)))
	f.Add(uint64(0), byte(4|8), join(ended, segmentBytes(256, frame(3, "c"))))
	f.Add(uint64(2), byte(2|4), join(segmentBytes(256, frame(1, "a")), segmentBytes(256, frame(2, "b"), frame(3, "c"))))
	f.Add(uint64(0), byte(1), join(legacyFrame(f, "fetch", put("a", 1))))
	f.Add(uint64(0), byte(0), join(three[:100]))
	f.Add(uint64(0), byte(4|16), join(three, segmentBytes(256, frame(4, "d"))))
	f.Add(uint64(3), byte(2|4|16), join(segmentBytes(256), ended, segmentBytes(256, frame(3, "c"))))
	// Frames with deferred datastore writes: ahead of a batch, and alone.
	dsFrame := func(seq uint64, queue string, muts ...journalMutation) []byte {
		b := encodeFrame(queue, muts)
		setSeq(b, seq)
		return b
	}
	dsPut := journalMutation{kind: kindDSPut, task: "T", key: []byte("k"), put: []byte("v")}
	dsDel := journalMutation{kind: kindDSDelete, task: "T", key: []byte("k")}
	f.Add(uint64(0), byte(4), join(segmentBytes(512, frame(1, "a"), dsFrame(2, "fetch", append([]journalMutation{dsPut}, put("b", 2)...)...), dsFrame(3, "", dsDel))))

	f.Fuzz(func(t *testing.T, s uint64, flags byte, data []byte) {
		var parts [][]byte
		rest := data
		var lens [2]int
		if len(rest) >= 4 {
			lens[0], lens[1] = int(binary.LittleEndian.Uint16(rest)), int(binary.LittleEndian.Uint16(rest[2:]))
			rest = rest[4:]
		}
		for i, n := range lens {
			n = min(n, len(rest))
			if n > 0 || i == 0 {
				parts = append(parts, rest[:n])
			}
			rest = rest[n:]
		}
		if len(rest) > 0 {
			parts = append(parts, rest)
		}
		if flags&16 != 0 {
			// Make the checksums right, so that the fuzzer explores
			// frames that pass them, not only ones that fail.
			for _, p := range parts {
				fixChecksums(p)
			}
		}
		var recp *journalRecord
		if flags&1 == 0 {
			recp = &journalRecord{M: 1 + uint64(flags>>1&1), S: s % 1024, Exists: flags&4 != 0}
		}
		segs := make([]segmentData, len(parts))
		n := uint64(1)
		for i, p := range parts {
			if i == 1 && flags&8 != 0 {
				n++ // a gap
			}
			segs[i] = segmentData{n: n, path: fmt.Sprintf("seg%d", n), data: p}
			n++
		}
		pathOf := func(n uint64) string { return fmt.Sprintf("seg%d", n) }
		r, err := replayJournal(recp, segs, pathOf)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("refused with an error that is not ErrCorrupt or ErrVersion: %v", err)
			}
			return
		}
		var sRec uint64
		if recp != nil {
			sRec = recp.S
		}
		last := sRec
		for _, fr := range r.frames {
			if recp != nil || fr.seq != 0 {
				if fr.seq <= last { // increasing (an end frame takes a seq too)
					t.Fatalf("applied frames out of sequence: seq %d after %d (record S %d)", fr.seq, last, sRec)
				}
				last = fr.seq
			}
		}
		for ci, sd := range r.chain {
			if recp == nil && !isSegmentV2(sd.data) {
				continue // the older format, read with its own rules
			}
			for off := segHeaderBytes; off+frameHeaderBytes <= len(sd.data); off++ {
				if !checksums(sd.data, off) {
					continue
				}
				covered := false
				for _, sp := range r.spans {
					if sp.seg == ci && sp.off <= off && off < sp.end {
						covered = true
						break
					}
				}
				if !covered {
					t.Fatalf("%s: a frame at offset %d checksums but replay neither applied nor refused it", sd.path, off)
				}
			}
		}
	})
}

func isSegmentV2(b []byte) bool {
	return len(b) >= len(segMagic) && string(b[:len(segMagic)]) == string(segMagic)
}

// checksums reports whether a frame whose header and payload match their
// checksums starts at off.
func checksums(data []byte, off int) bool {
	hdr := data[off : off+frameHeaderBytes]
	if crc32.Checksum(hdr[0:20], castagnoli) != binary.BigEndian.Uint32(hdr[20:24]) {
		return false
	}
	n := int(binary.BigEndian.Uint32(hdr[0:4]))
	if n > len(data)-off-frameHeaderBytes {
		return false
	}
	return crc32.Checksum(data[off+frameHeaderBytes:off+frameHeaderBytes+n], castagnoli) == binary.BigEndian.Uint32(hdr[16:20])
}

// fixChecksums sets a segment's header size and checksum and those of the
// frames found by following frame lengths from the first.
func fixChecksums(b []byte) {
	if len(b) < segHeaderBytes {
		return
	}
	binary.BigEndian.PutUint64(b[16:24], uint64(len(b)))
	binary.BigEndian.PutUint32(b[28:32], crc32.Checksum(b[:28], castagnoli))
	for off := segHeaderBytes; off+frameHeaderBytes <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		if n > len(b)-off-frameHeaderBytes || n == 0 && b[off+4] == 0 {
			return
		}
		binary.BigEndian.PutUint32(b[off+16:], crc32.Checksum(b[off+frameHeaderBytes:off+frameHeaderBytes+n], castagnoli))
		binary.BigEndian.PutUint32(b[off+20:], crc32.Checksum(b[off:off+20], castagnoli))
		off += frameHeaderBytes + n
	}
}
