package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors"
)

// repoRoot is the repository's top folder, seen from this package.
const repoRoot = "../.."

// snippetLoaders say how a documented configuration is loaded, by the
// documentation file it is in: the first entry whose prefix the file's path
// (relative to the repository root, slash-separated) starts with. A
// connector with settings of its own adds a line for its pages ahead of
// the catch-all, e.g. {"docs/connectors/webex", loadWebexConnector}.
var snippetLoaders = []struct {
	prefix string
	load   func(name string, text []byte) error
}{
	{"", loadHTTPConnector},
}

// loadHTTPConnector loads a configuration exactly as the shipped binary
// does at start-up (cmd/connector run): for the connector its [Connector]
// Type names (HTTP without one).
func loadHTTPConnector(name string, text []byte) error {
	_, _, err := connectors.Builtin.Parse(name, text)
	return err
}

// snippet is one fenced configuration block of a Markdown file.
type snippet struct {
	file    string // relative to the repository root
	line    int    // of the opening fence
	refused bool   // fenced as "ini refused": an example of a configuration the server refuses
	text    []byte
}

// TestDocumentedConfigurationsLoad loads every configuration example of
// the documentation: each ```ini block of every Markdown file of the
// repository (README.md, docs/, and any page added later), as the server
// would load it. A block fenced ```ini refused is an example of a mistake:
// it must be refused, and the page must show the error the command prints
// for a file connector.cfg holding just that block.
func TestDocumentedConfigurationsLoad(t *testing.T) {
	t.Parallel()
	snippets := documentedSnippets(t, repoRoot)
	files := map[string]bool{}
	for _, s := range snippets {
		files[s.file] = true
	}
	require.True(t, files["README.md"], "README.md has a configuration example")
	require.True(t, files[filepath.Join("docs", "configuration.md")], "docs/configuration.md has configuration examples")
	for _, s := range snippets {
		name := fmt.Sprintf("%s:%d", s.file, s.line)
		t.Run(name, func(t *testing.T) {
			if s.refused {
				// The page shows the error, as the command prints it for a
				// file holding just the example.
				err := loaderFor(t, s.file)("connector.cfg", s.text)
				require.Error(t, err, "an example marked refused loads")
				doc, rerr := os.ReadFile(filepath.Join(repoRoot, s.file))
				require.NoError(t, rerr)
				want := "connector: " + err.Error()
				require.True(t, strings.Contains(string(doc), want), "%s does not show the error of its refused example:\n%s", s.file, want)
				return
			}
			// Blank lines in place of the text above the block make the
			// loader's line numbers the Markdown file's.
			text := append(bytes.Repeat([]byte("\n"), s.line), s.text...)
			err := loaderFor(t, s.file)(s.file, text)
			require.NoError(t, err, "the example at %s does not load:\n%s", name, s.text)
		})
	}
}

func loaderFor(t *testing.T, file string) func(string, []byte) error {
	for _, l := range snippetLoaders {
		if strings.HasPrefix(filepath.ToSlash(file), l.prefix) {
			return l.load
		}
	}
	t.Fatalf("no loader for %s: add one to snippetLoaders", file)
	return nil
}

// documentedSnippets finds the ```ini blocks of every Markdown file under
// root, skipping testdata, vendored and hidden folders.
func documentedSnippets(t *testing.T, root string) []snippet {
	t.Helper()
	var out []snippet
	err := walkMarkdown(root, root, func(rel string, data []byte) error {
		found, err := iniBlocks(rel, data)
		out = append(out, found...)
		return err
	})
	require.NoError(t, err)
	return out
}

// walkMarkdown calls fn with each Markdown file under top (a folder or a
// file), its path relative to root and its text; hidden folders,
// testdata, vendor, node_modules and bench output (out) are left out.
func walkMarkdown(root, top string, fn func(rel string, data []byte) error) error {
	return filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch n := d.Name(); {
			case path == top:
			case strings.HasPrefix(n, "."), n == "testdata", n == "vendor", n == "node_modules", n == "out":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".md") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return fn(rel, data)
	})
}

// iniBlocks extracts the ```ini blocks of one Markdown file.
func iniBlocks(file string, data []byte) ([]snippet, error) {
	var out []snippet
	var cur *snippet
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			info := strings.Fields(strings.TrimPrefix(trimmed, "```"))
			if len(info) > 0 && info[0] == "ini" {
				cur = &snippet{file: file, line: n, refused: len(info) > 1 && info[1] == "refused"}
			}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text = append(cur.text, line+"\n"...)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: the ```ini block is not closed", file, cur.line)
	}
	return out, sc.Err()
}

// The extraction itself: blocks found with their lines, other languages
// ignored, "refused" understood, an unclosed block reported.
func TestIniBlocks(t *testing.T) {
	t.Parallel()
	md := "# T\n```ini\n[Server]\nPort=1\n```\n```sh\nmake\n```\n\n  ```ini refused\n  [Servr]\n  ```\n"
	got, err := iniBlocks("x.md", []byte(md))
	require.NoError(t, err)
	require.Equal(t, []snippet{
		{file: "x.md", line: 2, text: []byte("[Server]\nPort=1\n")},
		{file: "x.md", line: 10, refused: true, text: []byte("  [Servr]\n")},
	}, got)
	_, err = iniBlocks("x.md", []byte("```ini\n[Server]\n"))
	require.EqualError(t, err, "x.md:1: the ```ini block is not closed")
}

// TestDocTableRowsAreOneLine: in the project's Markdown pages (README.md,
// docs/, bench/), every table row is one line that starts and ends with a
// pipe, and a table ends at a blank line. A row broken over lines is
// several rows to a Markdown renderer (GitHub's): the text after the break
// shows as rows of their own, in the first column, as
// docs/connectors/http.md's StayOnSite row did.
func TestDocTableRowsAreOneLine(t *testing.T) {
	t.Parallel()
	var bad []string
	for _, top := range []string{"README.md", "docs", "bench"} {
		err := walkMarkdown(repoRoot, filepath.Join(repoRoot, top), func(rel string, data []byte) error {
			bad = append(bad, brokenTableRows(rel, data)...)
			return nil
		})
		require.NoError(t, err)
	}
	require.Empty(t, bad, "table rows broken over lines")
}

// brokenTableRows lists the lines of a Markdown page that break a table
// row: a row that does not end with a pipe, a line that follows a row
// without a blank line between (a renderer reads it as another row),
// unless it starts another block (an HTML comment, a heading, a quote),
// and a row that follows a paragraph's text without being a table's
// header (no |---| line after it): a renderer reads it as more of the
// paragraph, pipes and all, as a paragraph put in the middle of
// docs/connectors/webex.md's settings table left its InsertRoomId row.
// Fenced blocks are left out.
func brokenTableRows(file string, data []byte) []string {
	var out []string
	fenced, inTable, inText := false, false, false
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		l := strings.TrimSpace(line)
		text := inText
		inText = false
		switch {
		case strings.HasPrefix(l, "```"):
			fenced, inTable = !fenced, false
		case fenced:
		case strings.HasPrefix(l, "|"):
			if text && !inTable && (i+1 == len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "|-")) {
				out = append(out, fmt.Sprintf("%s:%d: a table row in a paragraph (put a blank line before its table)", file, i+1))
			}
			inTable = true
			if !strings.HasSuffix(l, "|") {
				out = append(out, fmt.Sprintf("%s:%d: a table row that does not end with |", file, i+1))
			}
		case inTable && l != "" && !strings.ContainsAny(l[:1], "<#>"):
			out = append(out, fmt.Sprintf("%s:%d: a line that continues a table row", file, i+1))
		default:
			inTable = false
			// Text a row may not follow: not a blank line, a heading, or
			// the end of an HTML block (a comment).
			inText = l != "" && !strings.HasPrefix(l, "#") && !strings.HasSuffix(l, ">")
		}
	}
	return out
}

// The check itself: a row broken over lines is found, a whole table and
// a table in a fenced block are not.
func TestBrokenTableRows(t *testing.T) {
	t.Parallel()
	md := "| a | b |\n|---|---|\n| x | y |\n<!-- end -->\ntext\n```\n| not a table\n```\n| k | long text\ngoes on |\n"
	require.Equal(t, []string{
		"x.md:9: a table row that does not end with |",
		"x.md:10: a line that continues a table row",
	}, brokenTableRows("x.md", []byte(md)))
	// A row after a paragraph is more of the paragraph; a table's header
	// there starts a table, as does a row after a comment or a heading.
	md = "text\n| k | v |\n\ntext\n| h | h |\n|---|---|\n| a | b |\n\n<!-- c -->\n| h |\n|---|\n\n# T\n| h |\n|---|\n"
	require.Equal(t, []string{
		"x.md:2: a table row in a paragraph (put a blank line before its table)",
	}, brokenTableRows("x.md", []byte(md)))
}
