package mimedoc

import (
	"strconv"
	"strings"

	"github.com/connectorhq/connector/extract"
)

// extendedParam reads the parameter name of a Content-Type or
// Content-Disposition value v as RFC 2231 writes it, in any charset:
// `name*=charset'lang'%XX...`, or continued over `name*0*=`, `name*1=`,
// ... . mime.ParseMediaType decodes only UTF-8 and US-ASCII: mutt and
// older Thunderbird write the file names of attachments in the sender's
// charset (filename*=iso-8859-1, two quotes, caf%E9.pdf), and there it dropped the
// name (or, continued, kept the segments after the encoded first one:
// "name.pdf" for "résumé name.pdf"), and a value it refused whole (a
// parameter given twice) left the name undecoded. ok is false when v
// has no such parameter.
func extendedParam(v, name string) (string, bool) {
	type segment struct {
		value   string
		encoded bool
	}
	var whole *segment
	var segs map[int]segment
	for _, kv := range splitParams(v) {
		k, val, found := strings.Cut(kv, "=")
		if !found {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		rest, ok := strings.CutPrefix(k, name+"*")
		if !ok {
			continue
		}
		val = unquote(strings.TrimSpace(val))
		if rest == "" {
			whole = &segment{value: val, encoded: true}
			continue
		}
		enc := strings.HasSuffix(rest, "*")
		n, err := strconv.Atoi(strings.TrimSuffix(rest, "*"))
		if err != nil || n < 0 || n > 1000 {
			continue
		}
		if segs == nil {
			segs = map[int]segment{}
		}
		if _, dup := segs[n]; !dup {
			segs[n] = segment{value: val, encoded: enc}
		}
	}
	var parts []segment
	switch {
	case whole != nil:
		parts = []segment{*whole}
	case len(segs) > 0:
		for i := 0; ; i++ {
			s, ok := segs[i]
			if !ok {
				break
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "", false
	}
	label := ""
	var b []byte
	for i, s := range parts {
		if !s.encoded {
			b = append(b, s.value...)
			continue
		}
		val := s.value
		if i == 0 {
			// charset'language'text
			if cs, after, ok := strings.Cut(val, "'"); ok {
				if _, text, ok := strings.Cut(after, "'"); ok {
					label, val = strings.TrimSpace(cs), text
				}
			}
		}
		b = appendPercentDecoded(b, val)
	}
	if strings.EqualFold(label, "us-ascii") {
		label = ""
	}
	return extract.DecodeTextCharset(b, label), true
}

// splitParams returns the "name=value" pieces of v after its media type:
// split at the semicolons outside quoted strings.
func splitParams(v string) []string {
	var out []string
	quoted, start := false, -1
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			if start >= 0 {
				out = append(out, v[start:i])
			}
			start = i + 1
		}
	}
	if start >= 0 && start < len(v) {
		out = append(out, v[start:])
	}
	return out
}

// unquote returns a quoted string's content; anything else as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// appendPercentDecoded appends s with its %XX escapes decoded; a '%' not
// followed by two hexadecimal digits is kept as written.
func appendPercentDecoded(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := fromHex(s[i+1])
			lo, ok2 := fromHex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return b
}
