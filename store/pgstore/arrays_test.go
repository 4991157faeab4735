package pgstore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every array built by arrays.go reads in PostgreSQL as the same array
// encoded by pgx, including empty arrays and NULL elements; a binArray of
// another array type is refused, not sent as something else.
// So do they in text format, without their type, as a connection sends
// them with default_query_exec_mode exec or simple_protocol (TextValue).
func TestArraysAsPgxEncodes(t *testing.T) {
	for _, mode := range []string{"", "exec", "simple_protocol"} {
		t.Run("mode="+mode, func(t *testing.T) {
			t.Parallel()
			url := server.DatabaseT(t)
			if mode != "" {
				url = withExecMode(url, mode)
			}
			arraysAsPgxEncodes(t, url)
		})
	}
}

func arraysAsPgxEncodes(t *testing.T, url string) {
	s, err := Open(ctx, Config{URL: url})
	require.NoError(t, err)
	defer s.Close()
	same := func(name, typ string, ours binArray, theirs any) {
		t.Helper()
		var eq bool
		var text string
		err := s.pool.QueryRow(ctx, `SELECT $1::`+typ+` IS NOT DISTINCT FROM $2::`+typ+`, $1::`+typ+`::text`, ours, theirs).Scan(&eq, &text)
		require.NoError(t, err, name)
		require.True(t, eq, "%s: ours reads as %s", name, text)
	}
	same("bytea", "bytea[]", byteaArray([][]byte{[]byte("a"), {}, nil, {0, 0xff, '\\'}}), [][]byte{[]byte("a"), {}, nil, {0, 0xff, '\\'}})
	same("bytea empty", "bytea[]", byteaArray([][]byte{}), [][]byte{})
	same("int8", "bigint[]", intArray([]int64{0, -1, 1 << 62, -1 << 63}), []int64{0, -1, 1 << 62, -1 << 63})
	same("int4", "int[]", intArray([]int32{0, -7, 1 << 30}), []int32{0, -7, 1 << 30})
	same("int2", "smallint[]", intArray([]int16{0, -3, 32767}), []int16{0, -3, 32767})
	same("bool", "boolean[]", boolArray([]bool{true, false, true}), []bool{true, false, true})
	same("text", "text[]", textArray(oidText, []string{"", "a\nb", "ünï"}), []string{"", "a\nb", "ünï"})
	same("text empty", "text[]", textArray(oidText, nil), []string{})
	same("jsonb", "jsonb[]", textArray(oidJSONB, []string{`{}`, `{"a":1,"b":"x"}`}), []string{`{}`, `{"a":1,"b":"x"}`})
	// The unnest the writes use reads the elements in order.
	rows, err := s.pool.Query(ctx, `SELECT u.a, u.b FROM unnest($1::bytea[], $2::bigint[]) WITH ORDINALITY AS u(a, b, n) ORDER BY n`,
		byteaArray([][]byte{[]byte("x"), []byte("y")}), intArray([]int64{5, 6}))
	require.NoError(t, err)
	type ab struct {
		A []byte
		B int64
	}
	var got []ab
	for rows.Next() {
		var r ab
		require.NoError(t, rows.Scan(&r.A, &r.B))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []ab{{[]byte("x"), 5}, {[]byte("y"), 6}}, got)
	// A binArray where another array type is expected fails.
	_, err = s.pool.Exec(ctx, `SELECT $1::bigint[]`, byteaArray([][]byte{[]byte("x")}))
	require.Error(t, err)
}

func TestRawInt(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want int64
	}{
		{[]byte{0xff, 0xfe}, -2},
		{[]byte{0, 0, 1, 0}, 256},
		{[]byte{0xff, 0xff, 0xff, 0xff}, -1},
		{[]byte{0x80, 0, 0, 0, 0, 0, 0, 0}, -1 << 63},
	} {
		got, err := rawInt(c.in)
		require.NoError(t, err)
		require.Equal(t, c.want, got)
	}
	_, err := rawInt([]byte{1, 2, 3})
	require.Error(t, err)
}
