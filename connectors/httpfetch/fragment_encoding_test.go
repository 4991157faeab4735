package httpfetch

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
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

// TestConfigFragmentIsBounded: a Config parameter (any of them) longer than
// maxFragmentBytes (1 MiB of base64) is refused at submission, and by
// View, before it is read, with its size and the bound, never its text;
// one at the bound is taken; an action queued before the bound still runs
// with its longer fragment (prepare, which Run uses, does not refuse it).
// Before, a fragment of up to MaxRequestBytes (64 MiB) was accepted, and
// each showing of the action's parameters (GetActionParameters) read it
// again to redact it: 1 to 5 s of CPU every time.
func TestConfigFragmentIsBounded(t *testing.T) {
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	text := func(n int) string {
		// n bytes of base64: a secret, then comment lines.
		var sb strings.Builder
		sb.WriteString("[MyTask]\nDepth=1\nBasicAuthPassword=hunter2\n")
		for sb.Len() < n/4*3 {
			sb.WriteString("// a comment line\n")
		}
		return base64.StdEncoding.EncodeToString([]byte(sb.String())[:n/4*3])
	}
	at, over := text(maxFragmentBytes), text(maxFragmentBytes+4)
	require.Len(t, at, maxFragmentBytes)
	_, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", at))
	require.NoError(t, err, "a fragment at the bound")

	for name, check := range map[string]func() error{
		"Validate": func() error { _, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", over)); return err },
		"View": func() error {
			_, err := b.repo.View(t.Context(), "anything", params("Config", over))
			return err
		},
	} {
		pe := paramErr(t, check(), "Config")
		require.Equal(t, fmt.Sprintf("[%d bytes]", len(over)), pe.Value, name)
		require.Contains(t, pe.Reason, "at most 1048576 bytes", name)
		require.NotContains(t, pe.Error(), "hunter2", name)
	}
	// A second Config is not the action's (the first counts), but Seal
	// and Redact read every Config, this one at each showing too: it is
	// bounded alike. (Before, Config=<small>&Config=<48 MiB> passed, and
	// its second fragment cost the seconds the bound is for.)
	pe := paramErr(t, func() error {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", at, "Config", over))
		return err
	}(), "Config")
	require.Equal(t, fmt.Sprintf("[%d bytes]", len(over)), pe.Value)
	require.NotEqual(t, over, b.repo.Redact(params("Config", at, "Config", over))[1].GetValue(),
		"Redact reads the second fragment (it hides its password)")

	_, err = b.repo.prepare(fetch.ActionSynchronize, params("Config", over))
	require.NoError(t, err, "an action queued with a longer fragment still runs")
}

// TestConfigFragmentErrorsShowItsSize: a Config fragment refused for what
// is wrong with its text rather than with one setting (a line that is not
// a setting, a NUL byte, a section given twice, a task list) is shown in
// the error by its size, as a too long one is, never as an empty value:
// the reply said `invalid value "" for parameter Config`, as if the
// fragment had been lost on the way, when the client had sent one.
func TestConfigFragmentErrorsShowItsSize(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	for _, tc := range []struct{ text, name string }{
		{"garbage line\n", "Config"},
		{"[MyTask]\nDepth=1\nBasicAuthPassword hunter2\n", "Config [MyTask]"},
		{"\x00\x00\x00", "Config"},
		{"[MyTask]\nDepth=1\n[MyTask]\nDepth=2\n", "Config [MyTask]"},
		{"[FetchTasks]\n0=MyTask\n", "Config [FetchTasks]"},
	} {
		v := base64.StdEncoding.EncodeToString([]byte(tc.text))
		_, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", v))
		pe := paramErr(t, err, tc.name)
		require.Equal(t, fmt.Sprintf("[%d bytes]", len(v)), pe.Value, "%q: %v", tc.text, err)
		require.NotContains(t, err.Error(), "hunter2")
	}
}
