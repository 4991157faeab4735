package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt meta page layout (format version 2, unchanged since 2014), read
// here only to refuse a truncated file before bbolt maps it: bbolt would
// otherwise read past the end of the file, which is a memory fault on a
// goroutine of its own (when it rebuilds the freelist) that no recover can
// catch.
const (
	boltPageHeader  = 16
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	boltMetaSumSize = 56 // bytes covered by the checksum
	boltMetaSize    = 64
)

type boltMeta struct {
	pageSize uint32
	freelist uint64 // page id of the freelist
	pgid     uint64 // high-water mark: pages [0, pgid) are in use
	txid     uint64
}

const (
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0)
)

// parseBoltMeta decodes and validates the meta page in buf (page header
// included). ok is false when the page is not a valid meta page.
func parseBoltMeta(buf []byte) (m boltMeta, ok bool) {
	if len(buf) < boltPageHeader+boltMetaSize {
		return m, false
	}
	b := buf[boltPageHeader:]
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != boltMagic || le.Uint32(b[4:]) != boltVersion {
		return m, false
	}
	h := fnv.New64a()
	_, _ = h.Write(b[:boltMetaSumSize])
	if h.Sum64() != le.Uint64(b[boltMetaSumSize:]) {
		return m, false
	}
	m = boltMeta{pageSize: le.Uint32(b[8:]), freelist: le.Uint64(b[32:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	return m, m.pageSize >= 512 && m.pageSize&(m.pageSize-1) == 0
}

// checkTruncated returns ErrCorrupt if the file at path is shorter than its
// newest valid meta page says. Files whose meta pages are both invalid are
// left to bbolt, which refuses them.
func checkTruncated(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: stat %s: %w", path, err)
	}
	read := func(off int64) []byte {
		buf := make([]byte, boltPageHeader+boltMetaSize)
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		return buf[:n]
	}
	var best *boltMeta
	consider := func(m boltMeta, ok bool) {
		if ok && (best == nil || m.txid > best.txid) {
			best = &m
		}
	}
	m0, ok0 := parseBoltMeta(read(0))
	consider(m0, ok0)
	if ok0 {
		consider(parseBoltMeta(read(int64(m0.pageSize))))
	} else {
		for ps := int64(1 << 10); ps <= 64<<10; ps <<= 1 {
			consider(parseBoltMeta(read(ps)))
		}
	}
	if best == nil {
		return nil
	}
	if need := int64(best.pgid) * int64(best.pageSize); fi.Size() < need {
		return fmt.Errorf("store: %s is %d bytes but its pages reach byte %d (truncated): %w", path, fi.Size(), need, ErrCorrupt)
	}
	if err := checkFreelist(f, *best); err != nil {
		return fmt.Errorf("store: %s: freelist page %d: %w: %w", path, best.freelist, ErrCorrupt, err)
	}
	return nil
}

// checkFreelist validates the freelist page the read-write open will load:
// bbolt trusts its element count, and a damaged one makes it allocate
// without bound or read past the page.
func checkFreelist(f *os.File, m boltMeta) error {
	if m.freelist == boltNoFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Errorf("page id out of range [2, %d)", m.pgid)
	}
	ps := int64(m.pageSize)
	hdr := make([]byte, boltPageHeader+8)
	if _, err := f.ReadAt(hdr, int64(m.freelist)*ps); err != nil {
		return err
	}
	le := binary.LittleEndian
	if flags := le.Uint16(hdr[8:]); flags != boltFreelistFlag {
		return fmt.Errorf("page flags %#x, want %#x", flags, boltFreelistFlag)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if m.freelist+overflow >= m.pgid {
		return fmt.Errorf("overflow %d reaches past page %d", overflow, m.pgid)
	}
	count, start := uint64(le.Uint16(hdr[10:])), int64(boltPageHeader)
	if count == 0xFFFF {
		count, start = le.Uint64(hdr[boltPageHeader:]), boltPageHeader+8
	}
	room := (int64(overflow)+1)*ps - start
	if count > uint64(room/8) {
		return fmt.Errorf("%d ids do not fit in %d bytes", count, room)
	}
	ids := make([]byte, count*8)
	if _, err := f.ReadAt(ids, int64(m.freelist)*ps+start); err != nil {
		return err
	}
	for i := uint64(0); i < count; i++ {
		if id := le.Uint64(ids[i*8:]); id < 2 || id >= m.pgid {
			return fmt.Errorf("free page id %d out of range [2, %d)", id, m.pgid)
		}
	}
	return nil
}
