package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse: any text either loads or is refused with an *Error that
// names the file and, when a line is at fault, a line of the text.
func FuzzParse(f *testing.F) {
	// The HTTP connector's embedded default, a whole real file.
	if def, err := os.ReadFile("../connectors/httpfetch/default.cfg"); err == nil {
		f.Add(string(def))
	} else {
		f.Fatal(err)
	}
	for _, s := range []string{
		"[Connector]\nType=http\n[Server]\nPort=1\n",
		"[Server]\nPort=7000 // x\n",
		"\xef\xbb\xbf[A]\r\nUrl=\"a \\\" b\"\r\n",
		"[FetchTasks]\n0=Docs\n[Dcos]\nUrl=a\n",
		"[Servr]\nPort=1\n[Web]\nHost=x\n",
		"x=1\n[",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse("f.cfg", []byte(text), testTaskKeys)
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.File != "f.cfg" {
			t.Fatalf("not a config.Error naming the file: %v", err)
		}
		// Lines as the reader counts them: a lone CR ends one too, and
		// UTF-16 text is decoded first (decodeText).
		lines := 1 + countNewlines(text)
		if d, err := decodeText([]byte(text)); err == nil {
			lines = 1 + countNewlines(string(d))
		}
		if ce.Line < 0 || ce.Line > lines {
			t.Fatalf("line %d outside the text's %d lines: %v", ce.Line, lines, err)
		}
	})
}

func countNewlines(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			n++
		}
	}
	return n
}
