package boundaries

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestInboxOwnsProcessedEvents checks that no code but shared/inbox writes SQL against
// processed_events (string literals in non-test Go files): consumers go through inbox.Claim,
// inbox.Seen and inbox.Prune, so the table's shape and retention live in one place. Tests may
// count its rows.
func TestInboxOwnsProcessedEvents(t *testing.T) {
	inboxDir := filepath.Join(root, "shared", "inbox")
	var files int
	for _, mod := range []string{"functions", "shared", "events", "infra", "wasmhost"} {
		err := filepath.WalkDir(filepath.Join(root, mod), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path == inboxDir || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			files++
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(s, "processed_events") {
						t.Errorf("%s: SQL on processed_events outside shared/inbox; add what you need to package inbox", fset.Position(lit.Pos()))
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files == 0 {
		t.Fatal("no Go files found")
	}
}
