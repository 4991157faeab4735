package extract

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTmpCorpus(t *testing.T) {
	x := newX(t, Limits{})
	root := os.Getenv("CORPUS")
	filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		ext := strings.ToLower(filepath.Ext(p))
		switch ext {
		case ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".pdf", ".xlsm", ".docm", ".pptm", ".xltx", ".dotx", ".potx":
		default:
			return nil
		}
		data, _ := os.ReadFile(p)
		d, err := x.Extract(context.Background(), Input{Data: data, Name: p})
		short := strings.TrimPrefix(p, root)
		if err != nil {
			fmt.Printf("ERR %s: %v\n", short, err)
			return nil
		}
		txt := d.Text
		if len(txt) > 80 {
			txt = txt[:80]
		}
		fmt.Printf("OK  %s: %s %d bytes title=%q author=%q pages=%d %q\n", short, d.Format, len(d.Text), d.Title, d.Author, d.Pages, txt)
		return nil
	})
}
