package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
)

// The file's syntax, as IDOL's configuration files have it:
//
//   - a line is a [Section] header, a Key=Value setting, a comment or blank;
//     IDOL's include lines (< "FILE" [Section] Key) are refused as such;
//   - a comment is a whole line whose first non-blank characters are //, ;
//     or #. There are no trailing comments: "Key=4 // four" would make
//     "4 // four" the value, so a value holding whitespace followed by //, ;
//     or # is refused with an error that says so; quote the value to keep
//     such text in it;
//   - names and values are trimmed of surrounding blanks; a value may be
//     quoted, "..." (with \" for a quote inside) or '...', and is then
//     taken literally;
//   - the text has been brought to UTF-8 with LF line ends (decodeText).

// rawSection is a section as written, before any key is interpreted.
type rawSection struct {
	name string // trimmed
	line int
	keys []KeyValue
	// keyLines are the keys' lines by foldKey, for finding a key given
	// twice without comparing it with every other key of the section.
	keyLines map[string]int
}

// foldKey returns a key for s such that foldKey(a) == foldKey(b) exactly
// when strings.EqualFold(a, b): each rune becomes the least rune of its
// case-folding orbit (unicode.SimpleFold), which for ASCII is the upper
// case. Names are compared through it in maps, so that hostile text (a
// request's Config fragment) of n names costs n, not n², comparisons.
func foldKey(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			b := make([]byte, 0, len(s))
			for _, r := range s {
				least := r
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					least = min(least, f)
				}
				b = utf8.AppendRune(b, least)
			}
			return string(b)
		}
	}
	return strings.ToUpper(s)
}

// trailingComment finds comment text after a value: whitespace, then //, ;
// or #.
var trailingComment = regexp.MustCompile(`\s(//|;|#)`)

// errTrailingComment explains the rule when a value ends in a comment;
// shown is the value as the error may show it (shownValue).
func errTrailingComment(shown, marker string) error {
	return fmt.Errorf("%s ends in what looks like a comment (%s): comments must be on a line of their own "+
		"(a line starting with //, ; or #); quote the value (\"...\") if the text belongs to it", shown, marker)
}

// shownValue is how a syntax error shows text of a value: quoted, or, for
// a key that holds a secret (secret.SensitiveName), not at all, since the
// error goes to the log and, for a request's Config fragment, into the
// error reply.
func shownValue(text string, hide bool) string {
	if hide {
		return "the value"
	}
	return wording.Quote(text)
}

// errNotUTF8 is the error of a line that is not UTF-8: the text is read as
// UTF-8 (or UTF-16 with its byte-order mark), and a Windows-1252 or
// Latin-1 file would otherwise have its accented letters turned into
// U+FFFD in replies and documents, or into other bytes in paths. Comment
// lines are not checked.
var errNotUTF8 = errors.New("the line is not UTF-8 text (a Windows-1252 or Latin-1 file?): save the file as UTF-8")

// scan splits configuration text into sections. Syntax errors name the line.
func scan(file string, data []byte) ([]*rawSection, error) {
	var secs []*rawSection
	var cur *rawSection
	secLines := map[string]int{} // by foldKey
	// Line by line without a slice of every line: that cost 16 bytes per
	// line, 16 times the size of a text of empty lines.
	for n, rest, more := 0, string(data), true; more; {
		var text string
		text, rest, more = strings.Cut(rest, "\n")
		n++
		line := strings.TrimSpace(text)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "//"), strings.HasPrefix(line, ";"), strings.HasPrefix(line, "#"):
			continue
		case !utf8.ValidString(line):
			// Not shown: the line may hold a secret.
			e := &Error{File: file, Line: n, Err: errNotUTF8}
			if !strings.HasPrefix(line, "[") { // a setting of the current section
				e.Section = sectionName(cur)
				if k, _, ok := strings.Cut(line, "="); ok && cur != nil && utf8.ValidString(k) {
					e.Key = strings.TrimSpace(k)
				}
			}
			return nil, e
		case strings.HasPrefix(line, "["):
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, &Error{File: file, Line: n, Err: fmt.Errorf("%s: a section header is [Name], with the closing ]", wording.Quote(line))}
			}
			name := strings.TrimSpace(line[1:end])
			if rest := strings.TrimSpace(line[end+1:]); rest != "" {
				return nil, &Error{File: file, Line: n, Section: name, Err: fmt.Errorf("%s after the section header: "+
					"a section header stands alone on its line (comments go on a line of their own)", wording.Quote(rest))}
			}
			if name == "" {
				return nil, &Error{File: file, Line: n, Err: errors.New("[]: a section needs a name")}
			}
			if first, ok := secLines[foldKey(name)]; ok {
				return nil, &Error{File: file, Line: n, Section: name, Err: fmt.Errorf("section appears twice (first on line %d)", first)}
			}
			secLines[foldKey(name)] = n
			cur = &rawSection{name: name, line: n, keyLines: map[string]int{}}
			secs = append(secs, cur)
		case strings.HasPrefix(line, "<"):
			// IDOL's include line, which a file copied from IDOL may
			// hold: refused as what it is, not as a setting without =.
			return nil, &Error{File: file, Line: n, Section: sectionName(cur), Err: fmt.Errorf("%s: IDOL's include lines "+
				`(< "FILE", < "FILE" [Section], < "FILE" [Section] Key) are not read here: copy what it names into this file`, shownLine(line))}
		default:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok {
				return nil, &Error{File: file, Line: n, Section: sectionName(cur), Err: fmt.Errorf("%s: expected Key=Value, a [Section] header, or a comment line (starting with //, ; or #)", shownLine(line))}
			}
			if k == "" {
				return nil, &Error{File: file, Line: n, Section: sectionName(cur), Err: fmt.Errorf("%s: the key before = is empty", wording.Quote(line))}
			}
			if cur == nil {
				return nil, &Error{File: file, Line: n, Key: k, Err: errors.New("setting outside any [Section]: put it under the section it belongs to")}
			}
			value, err := parseValue(strings.TrimSpace(v), secret.SensitiveName(k))
			if err != nil {
				return nil, &Error{File: file, Line: n, Section: cur.name, Key: k, Err: err}
			}
			if first, ok := cur.keyLines[foldKey(k)]; ok {
				return nil, &Error{File: file, Line: n, Section: cur.name, Key: k, Err: fmt.Errorf("key given more than once (first on line %d)", first)}
			}
			cur.keyLines[foldKey(k)] = n
			cur.keys = append(cur.keys, KeyValue{Key: k, Value: value, Line: n})
		}
	}
	return secs, nil
}

// shownLine is how an error shows a line that is no setting (a setting
// whose = is missing, Password: x): quoted whole, its value with it, but
// not one whose line names a secret (shownValue), by the name it starts
// with (X-Auth: x) or anywhere in it.
func shownLine(line string) string {
	if secret.SensitiveName(line) || secret.SensitiveName(leadingName(line)) {
		return "the line (not shown: it names a secret)"
	}
	return wording.Quote(line)
}

// leadingName is the name a line without = starts with: its text up to
// the first white space or colon ("X-Auth" of "X-Auth: x").
func leadingName(line string) string {
	if i := strings.IndexAny(line, ": \t"); i >= 0 {
		return line[:i]
	}
	return line
}

func sectionName(s *rawSection) string {
	if s == nil {
		return ""
	}
	return s.name
}

// parseValue reads the text after =: a quoted value literally, else the
// text itself, refusing a trailing comment. hide keeps the value out of
// the error (shownValue).
func parseValue(v string, hide bool) (string, error) {
	if v == "" {
		return "", nil
	}
	if q := v[0]; q == '"' || q == '\'' {
		end := closingQuote(v, q)
		if end < 0 {
			if hide {
				return "", fmt.Errorf("the quoted value has no closing %c", q)
			}
			return "", fmt.Errorf("%s: the quoted value has no closing %c", wording.Clip(v), q)
		}
		if rest := strings.TrimSpace(v[end+1:]); rest != "" {
			return "", fmt.Errorf("%s after the closing quote: comments must be on a line of their own", shownValue(rest, hide))
		}
		inner := v[1:end]
		if q == '"' {
			inner = strings.ReplaceAll(inner, `\"`, `"`)
		}
		return inner, nil
	}
	if m := trailingComment.FindStringSubmatch(v); m != nil {
		return "", errTrailingComment(shownValue(v, hide), m[1])
	}
	return v, nil
}

// closingQuote returns the index of the quote that closes v (v[0] is the
// opening one), skipping \" inside double quotes; -1 if there is none.
func closingQuote(v string, q byte) int {
	for i := 1; i < len(v); i++ {
		switch {
		case q == '"' && v[i] == '\\' && i+1 < len(v) && v[i+1] == '"':
			i++
		case v[i] == q:
			return i
		}
	}
	return -1
}
