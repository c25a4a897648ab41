// countreturns is the source oracle of the explain trials' too-many-returns
// check (crates/cli/tests/integration/explain.rs): for each Go file named on
// stdin it prints "file:line count" for every function declaration and
// function literal, line being its `func` keyword's and count the return
// statements in its body, not counting those of nested function literals
// (the compiler's NumReturns counts ORETURN nodes per function).
//
//	go run countreturns.go < files
package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	seen := map[string]bool{}
	for sc.Scan() {
		f := sc.Text()
		if seen[f] {
			continue
		}
		seen[f] = true
		fs := token.NewFileSet()
		af, err := parser.ParseFile(fs, f, nil, 0)
		if err != nil {
			continue
		}
		ast.Inspect(af, func(n ast.Node) bool {
			var body *ast.BlockStmt
			switch x := n.(type) {
			case *ast.FuncDecl:
				body = x.Body
			case *ast.FuncLit:
				body = x.Body
			default:
				return true
			}
			if body == nil {
				return true
			}
			c := 0
			ast.Inspect(body, func(m ast.Node) bool {
				switch m.(type) {
				case *ast.FuncLit:
					return false
				case *ast.ReturnStmt:
					c++
				}
				return true
			})
			fmt.Printf("%s:%d %d\n", f, fs.Position(n.Pos()).Line, c)
			return true
		})
	}
}
