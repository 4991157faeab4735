package httpfetch

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/ingest"
)

// TestRecordRunReadsEncodedRecords: recordRun reads the run number of
// every shape of record encodeRecord writes, as encoding/json does.
func TestRecordRunReadsEncodedRecords(t *testing.T) {
	for _, r := range []*record{
		{},
		{Run: 7},
		{Run: 1<<64 - 1},
		{ETag: `"run":5`, LastModified: `x","run":6,"`, Hash: []byte{1, 2}, Delivered: []byte("run"),
			Links: []string{`http://h/"run":9`, `a\"run\":3`}, Run: 42, Title: `{"run":8}`, Size: 3,
			Extra: []ingest.Field{{Name: "run", Value: "11"}}},
		{Run: 3, Excluded: true, Parent: "p", FetchedMs: 12345, Depth: 2},
	} {
		v := encodeRecord(r)
		got, ok := recordRun(v)
		require.True(t, ok, "%s", v)
		require.Equal(t, r.Run, got, "%s", v)
	}
}

// TestRecordRunLeavesTheRestToJSON: what recordRun does not read with
// certainty it refuses, and what it reads agrees with encoding/json.
func TestRecordRunLeavesTheRestToJSON(t *testing.T) {
	for _, v := range []string{
		``, `{}`, `[]`, `{"run": 1}`, `{"run":01}`, `{"run":1.5}`, `{"run":-1}`, `{"Run":1}`, `{"RUN":1}`,
		`{"run":1,"run":2}`, `{"r\u0075n":1}`, `{"run":"1"}`, `{"a":{"run":1}}`, `{"a":["run",1]}`,
		`{"run":99999999999999999999}`, `{"run":1`, `{"x":"\"run\":4","run":5}`, `{"x":"run","y":1}`,
	} {
		run, ok := recordRun([]byte(v))
		var want struct {
			Run uint64 `json:"run"`
		}
		err := json.Unmarshal([]byte(v), &want)
		if ok {
			require.NoError(t, err, "%s", v)
			require.Equal(t, want.Run, run, "%s", v)
		}
	}
	for _, v := range []string{`{"x":"\"run\":4","run":5}`, `{"run":0}`, `{"a":{"run":1},"run":2}`} {
		_, ok := recordRun([]byte(v))
		require.True(t, ok, v)
	}
}

// FuzzRecordRun: whenever recordRun reads a run number from a value that
// encoding/json accepts, both read the same number.
func FuzzRecordRun(f *testing.F) {
	f.Add([]byte(`{"run":5}`))
	f.Add(encodeRecord(&record{Links: []string{"a"}, Run: 3, Title: "t"}))
	f.Add([]byte(`{"x":"\"run\":4","run":5}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		run, ok := recordRun(v)
		if !ok {
			return
		}
		var want struct {
			Run uint64 `json:"run"`
		}
		if json.Unmarshal(v, &want) != nil {
			return // damaged: the store's checksums tell it, not recordRun
		}
		require.Equal(t, want.Run, run, "%q", v)
	})
}
