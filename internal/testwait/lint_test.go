package testwait

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNoRequireInEventually keeps a flake family out of the suite: the
// condition of require.Eventually / assert.Eventually runs on another
// goroutine, so it must not call require (FailNow off the test's goroutine)
// nor a helper given the test's t (which may). Use For, or EventuallyWithT
// with assert on its CollectT.
func TestNoRequireInEventually(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	var bad []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isEventually(call.Fun) || len(call.Args) < 2 {
				return true
			}
			tName := identName(call.Args[0])
			cond, ok := call.Args[1].(*ast.FuncLit)
			if !ok {
				return true
			}
			ast.Inspect(cond.Body, func(n ast.Node) bool {
				c, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && identName(sel.X) == "require" {
					bad = append(bad, fset.Position(c.Pos()).String()+": require inside Eventually")
				}
				for _, a := range c.Args {
					if tName != "" && identName(a) == tName {
						bad = append(bad, fset.Position(c.Pos()).String()+": the test's "+tName+" passed inside Eventually")
					}
				}
				return true
			})
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, bad, "use testwait.For (the condition runs on the test's goroutine) or EventuallyWithT with assert")
}

// isEventually matches require.Eventually and assert.Eventually (not
// EventuallyWithT, whose condition reports through its CollectT).
func isEventually(fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Eventually" {
		return false
	}
	pkg := identName(sel.X)
	return pkg == "require" || pkg == "assert"
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
