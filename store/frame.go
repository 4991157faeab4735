package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
)

// Every value the durable store writes is framed as a big-endian CRC-32C of
// the key followed by the payload, then the payload, so that changed bytes
// inside a key or a value are reported as ErrCorrupt instead of being handed
// to the caller (bbolt checksums only its meta pages).

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 4

func frameSum(key, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, payload)
}

// frame returns the framed payload of key.
func frame(key, payload []byte) []byte {
	return appendFrame(make([]byte, 0, frameHeader+len(payload)), key, payload)
}

// appendFrame appends the framed payload of key to dst.
func appendFrame(dst, key, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, frameSum(key, payload))
	return append(dst, payload...)
}

// unframe returns the payload of a framed value stored under key, or false
// if the value is too short or the checksum does not match.
func unframe(key, v []byte) ([]byte, bool) {
	if len(v) < frameHeader {
		return nil, false
	}
	p := v[frameHeader:]
	return p, binary.BigEndian.Uint32(v) == frameSum(key, p)
}

// seqKey is the 8-byte big-endian key of a sequence number, so byte order is
// numeric order.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// encodeAction marshals a record deterministically (so identical records
// give identical bytes) and checks its size.
func encodeAction(queue string, a *messages.StoredAction) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("store: queue %s: encode action %s: %w: %w", queue, a.GetId(), ErrInvalid, err)
	}
	if len(b) > MaxValueSize {
		return nil, fmt.Errorf("store: queue %s: action %s encodes to %d bytes, limit %d: %w", queue, a.GetId(), len(b), MaxValueSize, ErrInvalid)
	}
	return b, nil
}

// encodeActions encodes the records of batch's puts as encodeAction does,
// into one allocation for the whole batch instead of one per record (a
// group commit of submissions is tens of records). Each record is preceded
// by the frameHeader bytes that frame it under its seq key in the seqs
// bucket (see appendFrame), filled here: the checkpoint that folds it
// writes that framed value as it is, without building a copy. framed[i] is
// nil for a delete; a put's encoded record is framed[i][frameHeader:].
func encodeActions(queue string, batch []ActionMutation) (framed [][]byte, err error) {
	opts := proto.MarshalOptions{Deterministic: true}
	framed = make([][]byte, len(batch))
	total := 0
	for _, m := range batch {
		if m.Put != nil {
			total += frameHeader + opts.Size(m.Put)
		}
	}
	// The sizes are cached in the records now: marshalling uses them, so
	// each record is measured once (Marshal measures it too).
	opts.UseCachedSize = true
	buf := make([]byte, 0, total)
	for i, m := range batch {
		if m.Put == nil {
			continue
		}
		start := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		buf, err = opts.MarshalAppend(buf, m.Put)
		if err != nil {
			return nil, fmt.Errorf("store: queue %s: encode action %s: %w: %w", queue, m.Put.GetId(), ErrInvalid, err)
		}
		rec := buf[start+frameHeader:]
		if len(rec) > MaxValueSize {
			return nil, fmt.Errorf("store: queue %s: action %s encodes to %d bytes, limit %d: %w", queue, m.Put.GetId(), len(rec), MaxValueSize, ErrInvalid)
		}
		var sk [8]byte
		binary.BigEndian.PutUint64(sk[:], m.Put.GetStatus().GetSeq())
		binary.BigEndian.PutUint32(buf[start:], frameSum(sk[:], rec))
		framed[i] = buf[start:len(buf):len(buf)]
	}
	return framed, nil
}

// decodeAction unmarshals a stored record.
func decodeAction(b []byte) (*messages.StoredAction, error) {
	a := &messages.StoredAction{}
	if err := proto.Unmarshal(b, a); err != nil {
		return nil, err
	}
	return a, nil
}
