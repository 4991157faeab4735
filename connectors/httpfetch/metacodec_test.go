package httpfetch

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

var metaSamples = []taskMeta{
	{},
	{Runs: 1, Calls: 2},
	{Runs: 3, Calls: 40, Action: "IDENTIFIERS", LastStartMs: 1764900000000, LastFinishMs: 1764900000123},
	{Calls: 1, Action: "SYNCHRONIZE", LastFinishMs: 5},
	{Runs: math.MaxUint64, Calls: math.MaxUint64, Action: "X", LastStartMs: math.MinInt64, LastFinishMs: math.MaxInt64},
	{Calls: 7, LastStartMs: -1},
	{Action: `a "quoted" \ action`},
	{Action: "<html> & co"},
	{Action: "tab\there"},
	{Action: "été"},
	{Action: "\x7f"},
	{Action: "bad \xff utf-8"},
}

// TestMetaCodecMatchesJSON: the meta record is written byte for byte as
// json.Marshal writes it, and read back as json.Unmarshal reads it.
func TestMetaCodecMatchesJSON(t *testing.T) {
	t.Parallel()
	for _, m := range metaSamples {
		want, err := json.Marshal(&m)
		require.NoError(t, err)
		got, err := encodeMeta(&m)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))

		var fromJSON, fromUs taskMeta
		require.NoError(t, json.Unmarshal(want, &fromJSON))
		require.NoError(t, decodeMeta(want, &fromUs))
		require.Equal(t, fromJSON, fromUs, "%s", want)
	}
	require.True(t, decodeMetaFast([]byte(`{"runs":3,"calls":40,"action":"IDENTIFIERS","laststart":1,"lastfinish":-2}`), &taskMeta{}),
		"our own form is read without encoding/json")
}

// TestMetaDecodeOtherForms: records in forms encodeMeta does not write
// (another writer's spacing, key order, case, escapes, unknown or repeated
// keys, out-of-range or malformed numbers, invalid JSON) read exactly as
// json.Unmarshal reads them, errors included.
func TestMetaDecodeOtherForms(t *testing.T) {
	t.Parallel()
	for _, in := range metaDecodeSeeds {
		checkMetaDecode(t, []byte(in))
	}
}

var metaDecodeSeeds = []string{
	`{"runs": 1, "calls": 2}`,
	`{"calls":2,"runs":1}`,
	`{"RUNS":1,"Calls":2,"ACTION":"x"}`,
	`{"runs":1,"calls":2,"action":"a\"b","laststart":3}`,
	`{"runs":1,"calls":2,"action":"\u00e9t\u00e9"}`,
	`{"runs":1,"calls":2,"calls":3}`,
	`{"runs":1,"calls":2,"other":true}`,
	`{"runs":1,"calls":2,"laststart":5,"action":"X"}`,
	`{"runs":01,"calls":2}`,
	`{"runs":-1,"calls":2}`,
	`{"runs":18446744073709551616,"calls":2}`,
	`{"runs":1,"calls":2,"laststart":-0}`,
	`{"runs":1,"calls":2,"laststart":-}`,
	`{"runs":1,"calls":2,"laststart":9223372036854775808}`,
	`{"runs":1.5,"calls":2}`,
	`{"runs":1,"calls":2,"action":"x}`,
	`{"runs":1,"calls":2,"action":"<&>"}`,
	`{"runs":1,"calls":2} `,
	`{"runs":1,"calls":2}}`,
	`{"runs":1,"calls":2`,
	`{"runs":1,"calls":2,"action":"tab	"}`,
	`{"runs":1,"calls":2,"action":"` + "\xff" + `"}`,
	`null`,
	``,
	`{}`,
}

func checkMetaDecode(t *testing.T, in []byte) {
	t.Helper()
	var want, got taskMeta
	werr := json.Unmarshal(in, &want)
	gerr := decodeMeta(in, &got)
	if werr != nil {
		require.Error(t, gerr, "%q", in)
		return
	}
	require.NoError(t, gerr, "%q", in)
	require.Equal(t, want, got, "%q", in)
}

// FuzzMetaDecode: for any bytes, decodeMeta and json.Unmarshal agree.
func FuzzMetaDecode(f *testing.F) {
	for _, s := range metaDecodeSeeds {
		f.Add([]byte(s))
	}
	for _, m := range metaSamples {
		b, _ := json.Marshal(&m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkMetaDecode(t, in) })
}

// BenchmarkMetaCodec is the meta record's read and write back at the end
// of an action that starts no run, with encoding/json and with ours.
func BenchmarkMetaCodec(b *testing.B) {
	rec, _ := json.Marshal(&metaSamples[2])
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m taskMeta
			if err := json.Unmarshal(rec, &m); err != nil {
				b.Fatal(err)
			}
			m.Calls++
			if _, err := json.Marshal(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m taskMeta
			if err := decodeMeta(rec, &m); err != nil {
				b.Fatal(err)
			}
			m.Calls++
			if _, err := encodeMeta(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
