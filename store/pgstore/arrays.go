package pgstore

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Array parameters encoded here. The writes of the store send their rows
// as array parameters (unnest), and pgx encodes a Go slice element by
// element through interfaces and reflection: on a cluster node that was a
// fifth of a group commit's CPU (issue 17, perf of the scale benchmark's
// nodes: ExtendedQueryBuilder.Build 61 of the Commit's 271 samples, the
// socket write 32). An array built here is PostgreSQL's binary array
// format already, and each connection's type map (registerArrays) sends
// it as it is.
//
// A connection whose URL sets default_query_exec_mode to exec or
// simple_protocol (as one does behind PgBouncer in transaction pooling)
// sends every parameter in text format, and without its type (OID 0), and
// reads every result in text format: there a binArray is decoded back into
// the Go slice pgx was given before and encoded by pgx (TextValue), and
// the results are read by Scan (binaryCols). Those modes hold no session
// state between transactions, and the store needs none (its one lock is
// pg_advisory_xact_lock; it does not LISTEN), so they work, at a cost.

// binArray is an array parameter in PostgreSQL's binary format, of the
// array type oid. The zero value is not valid: use the functions below.
type binArray struct {
	oid uint32
	b   []byte
}

// Element types of the arrays.
const (
	oidBool  = pgtype.BoolOID
	oidBytea = pgtype.ByteaOID
	oidInt2  = pgtype.Int2OID
	oidInt4  = pgtype.Int4OID
	oidInt8  = pgtype.Int8OID
	oidText  = pgtype.TextOID
	oidJSONB = pgtype.JSONBOID
)

// arrayOf maps an element type to its array type.
var arrayOf = map[uint32]uint32{
	oidBool:  pgtype.BoolArrayOID,
	oidBytea: pgtype.ByteaArrayOID,
	oidInt2:  pgtype.Int2ArrayOID,
	oidInt4:  pgtype.Int4ArrayOID,
	oidInt8:  pgtype.Int8ArrayOID,
	oidText:  pgtype.TextArrayOID,
	oidJSONB: pgtype.JSONBArrayOID,
}

// arrayHeader starts an array of n elements of type elem whose elements
// take size bytes (their length words not counted): the number of
// dimensions (1, or 0 for an empty array), the null flag (0; byteaArray
// sets it for a NULL element), the element type, then the length and
// lower bound (1) of the dimension. An empty or nil slice is an empty
// array (pgx sends a nil slice as NULL; no caller passes one).
func arrayHeader(elem uint32, n, size int) binArray {
	b := make([]byte, 0, 20+4*n+size)
	if n == 0 {
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, elem)
		return binArray{oid: arrayOf[elem], b: b}
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, elem)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint32(b, 1)
	return binArray{oid: arrayOf[elem], b: b}
}

// byteaArray is vs as a bytea[]; a nil element is NULL, as pgx sends it.
func byteaArray(vs [][]byte) binArray {
	size := 0
	for _, v := range vs {
		size += len(v)
	}
	a := arrayHeader(oidBytea, len(vs), size)
	for _, v := range vs {
		if v == nil {
			a.b = binary.BigEndian.AppendUint32(a.b, 0xffffffff) // -1: NULL
			binary.BigEndian.PutUint32(a.b[4:], 1)               // the null flag
			continue
		}
		a.b = binary.BigEndian.AppendUint32(a.b, uint32(len(v)))
		a.b = append(a.b, v...)
	}
	return a
}

// textArray is vs as a text[] (or, with elem oidJSONB, a jsonb[] of the
// JSON texts vs: jsonb's binary form is a version byte, 1, and the text).
func textArray(elem uint32, vs []string) binArray {
	extra := 0
	if elem == oidJSONB {
		extra = 1
	}
	size := 0
	for _, v := range vs {
		size += len(v) + extra
	}
	a := arrayHeader(elem, len(vs), size)
	for _, v := range vs {
		a.b = binary.BigEndian.AppendUint32(a.b, uint32(len(v)+extra))
		if extra == 1 {
			a.b = append(a.b, 1)
		}
		a.b = append(a.b, v...)
	}
	return a
}

// intArray is vs as a bigint[], int[] or smallint[], after the width of T.
func intArray[T int16 | int32 | int64](vs []T) binArray {
	w := int(unsafe.Sizeof(T(0)))
	elem := uint32(oidInt8)
	switch w {
	case 4:
		elem = oidInt4
	case 2:
		elem = oidInt2
	}
	a := arrayHeader(elem, len(vs), w*len(vs))
	for _, v := range vs {
		a.b = binary.BigEndian.AppendUint32(a.b, uint32(w))
		switch w {
		case 8:
			a.b = binary.BigEndian.AppendUint64(a.b, uint64(v))
		case 4:
			a.b = binary.BigEndian.AppendUint32(a.b, uint32(v))
		default:
			a.b = binary.BigEndian.AppendUint16(a.b, uint16(v))
		}
	}
	return a
}

func boolArray(vs []bool) binArray {
	a := arrayHeader(oidBool, len(vs), len(vs))
	for _, v := range vs {
		a.b = binary.BigEndian.AppendUint32(a.b, 1)
		if v {
			a.b = append(a.b, 1)
		} else {
			a.b = append(a.b, 0)
		}
	}
	return a
}

// registerArrays makes conn's type map send a binArray as it is, as a
// parameter of its array type in binary format; every other value of
// those types is encoded by pgx's own codec, as before.
func registerArrays(conn *pgx.Conn) {
	m := conn.TypeMap()
	for _, oid := range arrayOf {
		t, ok := m.TypeForOID(oid)
		if !ok {
			continue
		}
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: binArrayCodec{t.Codec}})
	}
}

// binArrayCodec is an array type's codec that encodes a binArray itself,
// in binary format. (In text format pgx takes a binArray's TextValue
// before it looks at the type.)
type binArrayCodec struct{ pgtype.Codec }

func (c binArrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if a, ok := value.(binArray); ok {
		if format != pgtype.BinaryFormatCode || a.oid != oid {
			return nil
		}
		return binArrayPlan{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

type binArrayPlan struct{}

func (binArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	return append(buf, value.(binArray).b...), nil
}

// textMaps hold the type maps TextValue encodes with (a map is not safe
// for concurrent use).
var textMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// TextValue implements pgtype.TextValuer, which pgx asks for a parameter
// sent in text format, whatever its type (default_query_exec_mode exec or
// simple_protocol): the array as pgx encodes the Go slice it was made
// from. Only those modes pay for the decoding; the binary format, which
// every other mode asks for, is sent as it is.
func (a binArray) TextValue() (pgtype.Text, error) {
	v, oid, err := a.slice()
	if err != nil {
		return pgtype.Text{}, err
	}
	m := textMaps.Get().(*pgtype.Map)
	defer textMaps.Put(m)
	b, err := m.Encode(oid, pgtype.TextFormatCode, v, nil)
	if err != nil {
		return pgtype.Text{}, fmt.Errorf("store: postgresql: an array in text format: %w", err)
	}
	return pgtype.Text{String: string(b), Valid: true}, nil
}

// slice decodes a into the Go slice its function was given (a jsonb[] as
// the []string of its JSON texts, to encode as a text[]: the same text),
// and the array type to encode it as; an empty array is an empty slice,
// never nil (which pgx would send as NULL).
func (a binArray) slice() (any, uint32, error) {
	b := a.b
	bad := func() (any, uint32, error) {
		return nil, 0, fmt.Errorf("store: postgresql: a binary array of %d bytes is cut short", len(a.b))
	}
	if len(b) < 12 {
		return bad()
	}
	elem := binary.BigEndian.Uint32(b[8:])
	n := 0
	b = b[12:]
	if binary.BigEndian.Uint32(a.b) == 1 {
		if len(b) < 8 {
			return bad()
		}
		n = int(binary.BigEndian.Uint32(b))
		b = b[8:]
	}
	vals := make([][]byte, n) // nil: NULL
	for i := range vals {
		if len(b) < 4 {
			return bad()
		}
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if l < 0 {
			continue
		}
		if len(b) < int(l) {
			return bad()
		}
		vals[i], b = b[:l:l], b[l:]
	}
	switch elem {
	case oidBytea:
		return vals, a.oid, nil
	case oidText, oidJSONB:
		out := make([]string, n)
		for i, v := range vals {
			if elem == oidJSONB && len(v) > 0 {
				v = v[1:] // the version byte
			}
			out[i] = string(v)
		}
		return out, pgtype.TextArrayOID, nil
	case oidInt8:
		return rawInts[int64](vals, a.oid)
	case oidInt4:
		return rawInts[int32](vals, a.oid)
	case oidInt2:
		return rawInts[int16](vals, a.oid)
	case oidBool:
		out := make([]bool, n)
		for i, v := range vals {
			out[i] = len(v) == 1 && v[0] != 0
		}
		return out, a.oid, nil
	}
	return nil, 0, fmt.Errorf("store: postgresql: a binary array of element type %d", elem)
}

// rawInts is the binary integers vals as a []T, for slice.
func rawInts[T int16 | int32 | int64](vals [][]byte, oid uint32) (any, uint32, error) {
	out := make([]T, len(vals))
	for i, v := range vals {
		x, err := rawInt(v)
		if err != nil {
			return nil, 0, err
		}
		out[i] = T(x)
	}
	return out, oid, nil
}

// Rows read here. pgx's Scan finds a plan per column and converts through
// interfaces; the group commit's results (the ids written, the seqs given,
// the actions claimed) are read from the raw values instead, in the
// binary format pgx asks for every column of these types (text comes as
// its bytes in either format), unless the connection reads results in
// text format (default_query_exec_mode exec or simple_protocol): then by
// Scan, as before.

// binaryCols reports whether the columns cols of rows' result come in
// binary format, as the raw readers need (else they Scan).
func binaryCols(rows pgx.Rows, cols ...int) bool {
	fds := rows.FieldDescriptions()
	for _, c := range cols {
		if c >= len(fds) || fds[c].Format != pgtype.BinaryFormatCode {
			return false
		}
	}
	return true
}

// rawInt is a binary int2, int4 or int8 value.
func rawInt(v []byte) (int64, error) {
	switch len(v) {
	case 8:
		return int64(binary.BigEndian.Uint64(v)), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v))), nil
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v))), nil
	}
	return 0, fmt.Errorf("store: postgresql: an integer of %d bytes in a result", len(v))
}
