package boundaries

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// TestFunctionsReadSettingsThroughConfig checks STYLE.md's "settings are a documented Config
// struct": every function's main.go reads no environment variable inline (os.Getenv,
// os.LookupEnv, os.Environ) except to hand os.Getenv to ConfigFromEnv, and the function
// declares, in config.go, a documented Config and ConfigFromEnv(getenv func(string) string)
// (Config, error).
func TestFunctionsReadSettingsThroughConfig(t *testing.T) {
	mains, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	if err != nil || len(mains) == 0 {
		t.Fatalf("no functions/*/main.go: %v", err)
	}
	for _, mainFile := range mains {
		dir := filepath.Dir(mainFile)
		name := filepath.Base(dir)
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, mainFile, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		// os.Getenv is allowed only as the argument of ConfigFromEnv.
		allowed := map[ast.Node]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "ConfigFromEnv" {
					for _, a := range call.Args {
						allowed[a] = true
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || allowed[sel] {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "os" &&
				(sel.Sel.Name == "Getenv" || sel.Sel.Name == "LookupEnv" || sel.Sel.Name == "Environ") {
				t.Errorf("%s: os.%s read inline; read settings through ConfigFromEnv in config.go", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})

		cfgFile := filepath.Join(dir, "config.go")
		cf, err := parser.ParseFile(token.NewFileSet(), cfgFile, nil, parser.ParseComments)
		if err != nil {
			t.Errorf("functions/%s: no config.go with its Config and ConfigFromEnv: %v", name, err)
			continue
		}
		var hasConfig, hasFromEnv bool
		for _, d := range cf.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == "Config" {
						hasConfig = true
						if d.Doc == nil && ts.Doc == nil {
							t.Errorf("functions/%s: Config has no doc comment", name)
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == "ConfigFromEnv" {
					hasFromEnv = fromEnvSignature(d.Type)
					if !hasFromEnv {
						t.Errorf("functions/%s: ConfigFromEnv must be func(getenv func(string) string) (Config, error)", name)
					}
				}
			}
		}
		if !hasConfig {
			t.Errorf("functions/%s/config.go declares no Config type", name)
		}
		if !hasFromEnv {
			t.Errorf("functions/%s/config.go declares no ConfigFromEnv", name)
		}
	}
}

func fromEnvSignature(ft *ast.FuncType) bool {
	if ft.Params == nil || len(ft.Params.List) != 1 || ft.Results == nil || len(ft.Results.List) != 2 {
		return false
	}
	p, ok := ft.Params.List[0].Type.(*ast.FuncType)
	if !ok || p.Params == nil || len(p.Params.List) != 1 || p.Results == nil || len(p.Results.List) != 1 {
		return false
	}
	isIdent := func(e ast.Expr, name string) bool { id, ok := e.(*ast.Ident); return ok && id.Name == name }
	return isIdent(p.Params.List[0].Type, "string") && isIdent(p.Results.List[0].Type, "string") &&
		isIdent(ft.Results.List[0].Type, "Config") && isIdent(ft.Results.List[1].Type, "error")
}
