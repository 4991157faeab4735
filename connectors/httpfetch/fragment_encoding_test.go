package httpfetch

import (
	"encoding/base64"
	"encoding/binary"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
)

// encodings are the ways a client may encode a Config fragment's text
// before base64: each must be checked exactly as plain UTF-8 is.
var fragmentEncodings = []struct {
	name   string
	encode func(string) []byte
}{
	{"utf-8", func(s string) []byte { return []byte(s) }},
	{"utf-8 with BOM", func(s string) []byte { return append([]byte{0xEF, 0xBB, 0xBF}, s...) }},
	{"utf-8 CRLF", func(s string) []byte { return []byte(crlf(s, "\r\n")) }},
	{"utf-8 BOM CRLF", func(s string) []byte { return append([]byte{0xEF, 0xBB, 0xBF}, crlf(s, "\r\n")...) }},
	{"utf-8 CR", func(s string) []byte { return []byte(crlf(s, "\r")) }},
	{"utf-16le with BOM", func(s string) []byte { return utf16Bytes(s, binary.LittleEndian, []byte{0xFF, 0xFE}) }},
	{"utf-16be with BOM", func(s string) []byte { return utf16Bytes(s, binary.BigEndian, []byte{0xFE, 0xFF}) }},
	{"utf-16le CRLF", func(s string) []byte { return utf16Bytes(crlf(s, "\r\n"), binary.LittleEndian, []byte{0xFF, 0xFE}) }},
}

func crlf(s, eol string) string {
	out := make([]byte, 0, len(s)*2)
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, eol...)
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

func utf16Bytes(s string, order binary.AppendByteOrder, bom []byte) []byte {
	out := append([]byte(nil), bom...)
	for _, u := range utf16.Encode([]rune(s)) {
		out = order.AppendUint16(out, u)
	}
	return out
}

// TestConfigFragmentEncodings: a Config fragment is checked the same way
// whatever its encoding (issue 9: a UTF-8 byte-order mark got [Server],
// [Ingestion], new task sections and schedule keys accepted).
func TestConfigFragmentEncodings(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	refused := []struct{ text, name string }{
		{"[Server]\nPort=1\n", "Config"},
		{"[Ingestion]\nIngestDirectory=/tmp/x\n", "Config"},
		{"[Actions]\nMaximumThreads=64\n", "Config"},
		{"[Logging]\nLogLevel=debug\n", "Config"},
		{"[MyTask]\nDepth=1\n[Server]\nPort=1\n", "Config"},
		{"[NewTask]\nUrl=http://127.0.0.1:2/\n", "Config"},
		{"[FetchTasks]\n0=MyTask\n", "Config [FetchTasks]"},
		{"[MyTask]\nScheduleRepeatSecs=5\n", "Config [MyTask] ScheduleRepeatSecs"},
		{"[Default]\nScheduleStartTime=02:00\n", "Config [Default] ScheduleStartTime"},
		{"[MyTask]\nDepth=deep\n", "Config [MyTask] Depth"},
	}
	for _, enc := range fragmentEncodings {
		for _, tc := range refused {
			v := base64.StdEncoding.EncodeToString(enc.encode(tc.text))
			tasks, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", v))
			require.Nil(t, tasks, "%s: %q", enc.name, tc.text)
			paramErr(t, err, tc.name)
		}
		// The same fragment without anything forbidden is taken, and means
		// the same thing in every encoding.
		v := base64.StdEncoding.EncodeToString(enc.encode("[MyTask]\nDepth=1\nMaxPages=7\n[Default]\nMaxPages=3\n"))
		req, err := b.repo.parseRequest(params("Config", v), actionParams[fetch.ActionSynchronize])
		require.NoError(t, err, enc.name)
		require.Equal(t, []string{"MyTask", "Default"}, req.fragment.SectionNames(), enc.name)
		got, _ := req.fragment.Section("MyTask").Get("MaxPages")
		require.Equal(t, "7", got, enc.name)
		got, _ = req.fragment.Section("Default").Get("MaxPages")
		require.Equal(t, "3", got, enc.name)
	}
	// UTF-16 without its byte-order mark is not guessed at.
	v := base64.StdEncoding.EncodeToString(utf16Bytes("[Server]\nPort=1\n", binary.LittleEndian, nil))
	_, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", v))
	paramErr(t, err, "Config")
}
