package httpfetch

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The task's meta record (taskMeta) is read and written back at the end of
// every action that starts no Synchronize run: with encoding/json's
// reflection that was about a tenth of the server's CPU when small actions
// run as they arrive (bench: submit with the queue running). encodeMeta
// writes exactly the bytes json.Marshal writes; decodeMeta reads that form
// directly and hands anything else (another writer's spacing or key
// order, escapes, unknown keys, invalid JSON) to json.Unmarshal, so both
// keep json's meaning and the stored format does not change.

// encodeMeta returns json.Marshal(m).
func encodeMeta(m *taskMeta) ([]byte, error) {
	if !plainJSONString(m.Action) {
		return json.Marshal(m)
	}
	b := make([]byte, 0, 96+len(m.Action))
	b = append(b, `{"runs":`...)
	b = strconv.AppendUint(b, m.Runs, 10)
	b = append(b, `,"calls":`...)
	b = strconv.AppendUint(b, m.Calls, 10)
	if m.Action != "" {
		b = append(b, `,"action":"`...)
		b = append(b, m.Action...)
		b = append(b, '"')
	}
	if m.LastStartMs != 0 {
		b = append(b, `,"laststart":`...)
		b = strconv.AppendInt(b, m.LastStartMs, 10)
	}
	if m.LastFinishMs != 0 {
		b = append(b, `,"lastfinish":`...)
		b = strconv.AppendInt(b, m.LastFinishMs, 10)
	}
	return append(b, '}'), nil
}

// plainJSONString reports whether json.Marshal writes s as it is between
// quotes: printable ASCII without the characters it escapes (", \ and
// HTML's <, > and &).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// decodeMeta sets *m (zero on entry) as json.Unmarshal(b, m) does.
func decodeMeta(b []byte, m *taskMeta) error {
	if decodeMetaFast(b, m) {
		return nil
	}
	*m = taskMeta{}
	return json.Unmarshal(b, m)
}

// decodeMetaFast reads encodeMeta's form; false (m then undefined) for
// anything else.
func decodeMetaFast(b []byte, m *taskMeta) bool {
	var ok bool
	if b, ok = bytes.CutPrefix(b, []byte(`{"runs":`)); !ok {
		return false
	}
	if m.Runs, b, ok = metaUint(b); !ok {
		return false
	}
	if b, ok = bytes.CutPrefix(b, []byte(`,"calls":`)); !ok {
		return false
	}
	if m.Calls, b, ok = metaUint(b); !ok {
		return false
	}
	if rest, found := bytes.CutPrefix(b, []byte(`,"action":"`)); found {
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return false
		}
		for _, c := range rest[:end] {
			if c < 0x20 || c >= 0x80 || c == '\\' { // escapes, control characters, UTF-8: json's to read
				return false
			}
		}
		m.Action, b = string(rest[:end]), rest[end+1:]
	}
	if rest, found := bytes.CutPrefix(b, []byte(`,"laststart":`)); found {
		if m.LastStartMs, b, ok = metaInt(rest); !ok {
			return false
		}
	}
	if rest, found := bytes.CutPrefix(b, []byte(`,"lastfinish":`)); found {
		if m.LastFinishMs, b, ok = metaInt(rest); !ok {
			return false
		}
	}
	return len(b) == 1 && b[0] == '}'
}

// metaUint reads a JSON number of digits, as strconv.AppendUint writes
// it (no sign, no leading zero), at the start of b.
func metaUint(b []byte) (uint64, []byte, bool) {
	n := digits(b)
	if n == 0 || (n > 1 && b[0] == '0') {
		return 0, b, false
	}
	v, err := strconv.ParseUint(string(b[:n]), 10, 64)
	return v, b[n:], err == nil
}

// metaInt reads what strconv.AppendInt writes (an optional minus, then as
// metaUint) at the start of b.
func metaInt(b []byte) (int64, []byte, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	n := digits(d)
	if n == 0 || (n > 1 && d[0] == '0') || (neg && d[0] == '0') {
		return 0, b, false
	}
	end := n
	if neg {
		end++
	}
	v, err := strconv.ParseInt(string(b[:end]), 10, 64)
	return v, b[end:], err == nil
}

func digits(b []byte) int {
	n := 0
	for n < len(b) && '0' <= b[n] && b[n] <= '9' {
		n++
	}
	return n
}
