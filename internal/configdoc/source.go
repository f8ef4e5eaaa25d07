// Package configdoc builds the configuration reference (docs/config.md)
// from the schema itself: the keys and types come from reflecting over the
// configuration struct and its mapstructure tags, the descriptions from
// the doc comments of the fields in the Go source, the allowed values of
// enumerations from their constants or from the cases of the functions
// that parse them. cmd/rlocd's TestConfigReference runs it over rlocd's
// file schema and fails when docs/config.md is stale.
package configdoc

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Source is the parsed Go source of one module, read package by package
// as the reference needs them.
type Source struct {
	// Main is the import path of the package that reflection calls
	// "main" (a command's types).
	Main string
	// Tests includes the _test.go files (for schemas declared in tests).
	Tests bool

	dir  string // module root
	path string // module path
	fset *token.FileSet
	pkgs map[string][]*ast.File // by import path
}

// Open reads the go.mod of the module whose root is dir.
func Open(dir string) (*Source, error) {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return &Source{dir: dir, path: strings.Trim(strings.TrimSpace(p), `"`), fset: token.NewFileSet(),
				pkgs: map[string][]*ast.File{}}, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s/go.mod: no module line", dir)
}

// files returns the parsed files of the module's package pkgPath
// (nil for a package outside the module).
func (s *Source) files(pkgPath string) ([]*ast.File, error) {
	if pkgPath == "main" {
		pkgPath = s.Main
	}
	if fs, ok := s.pkgs[pkgPath]; ok {
		return fs, nil
	}
	rel, ok := strings.CutPrefix(pkgPath, s.path)
	if !ok || (rel != "" && rel[0] != '/') {
		return nil, nil
	}
	dir := filepath.Join(s.dir, filepath.FromSlash(rel))
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var fs []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") && !s.Tests {
			continue
		}
		f, err := parser.ParseFile(s.fset, n, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("%s: no Go files in %s", pkgPath, dir)
	}
	s.pkgs[pkgPath] = fs
	return fs, nil
}

// typeSpec finds the declaration of the named type t and its doc
// comment (nil for a type outside the module).
func (s *Source) typeSpec(t reflect.Type) (*ast.TypeSpec, string, error) {
	fs, err := s.files(t.PkgPath())
	if err != nil || fs == nil {
		return nil, "", err
	}
	for _, f := range fs {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, sp := range gd.Specs {
				ts := sp.(*ast.TypeSpec)
				if ts.Name.Name != t.Name() {
					continue
				}
				doc := ts.Doc.Text()
				if doc == "" {
					doc = gd.Doc.Text()
				}
				return ts, strings.Join(strings.Fields(doc), " "), nil
			}
		}
	}
	return nil, "", fmt.Errorf("%s.%s: declaration not found", t.PkgPath(), t.Name())
}

// structType finds the declaration of the struct type t.
func (s *Source) structType(t reflect.Type) (*ast.StructType, error) {
	ts, _, err := s.typeSpec(t)
	if err != nil || ts == nil {
		return nil, err
	}
	st, ok := ts.Type.(*ast.StructType)
	if !ok {
		return nil, fmt.Errorf("%s.%s: not a struct", t.PkgPath(), t.Name())
	}
	return st, nil
}

// TypeDoc returns the doc comment of the named type t as one line ("" for
// a type outside the module).
func (s *Source) TypeDoc(t reflect.Type) (string, error) {
	_, doc, err := s.typeSpec(t)
	return doc, err
}

// FieldDocs returns the doc comments of the fields of the struct type t by
// field name (fields declared together share their comment), as one line
// each.
func (s *Source) FieldDocs(t reflect.Type) (map[string]string, error) {
	st, err := s.structType(t)
	if err != nil || st == nil {
		return nil, err
	}
	docs := map[string]string{}
	last := "" // the last comment, for the fields it names ("Priority and Weight are ...")
	for _, f := range st.Fields.List {
		text := f.Doc.Text()
		if text == "" {
			text = f.Comment.Text()
		}
		text = strings.Join(strings.Fields(text), " ")
		if text != "" {
			last = text
		}
		for _, n := range f.Names {
			if text == "" && regexp.MustCompile(`\b`+n.Name+`\b`).MatchString(last) {
				docs[n.Name] = last
				continue
			}
			docs[n.Name] = text
		}
		if len(f.Names) == 0 { // embedded
			docs[typeName(f.Type)] = text
		}
	}
	return docs, nil
}

// typeName is the name of an embedded field's type expression.
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.StarExpr:
		return typeName(e.X)
	}
	return ""
}

// Consts returns the string values of the constants declared with the
// named type t, in declaration order.
func (s *Source) Consts(t reflect.Type) ([]string, error) {
	fs, err := s.files(t.PkgPath())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range fs {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != t.Name() {
					continue
				}
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							out = append(out, s)
						}
					}
				}
			}
		}
	}
	return out, nil
}

// fn finds the function (or method) name of package pkgPath.
func (s *Source) fn(pkgPath, name string) (*ast.FuncDecl, error) {
	fs, err := s.files(pkgPath)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == name {
				return fd, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: func %s not found", pkgPath, name)
}

// CaseStrings returns the string literals of the case clauses of the
// switch statements in function name of package pkgPath (those whose tag
// expression reads tag, when tag is not empty), one slice per
// clause: the values a parser accepts, the first of each clause being the
// canonical spelling and the others its aliases ("" marks the clause of
// an absent value).
func (s *Source) CaseStrings(pkgPath, name, tag string) ([][]string, error) {
	fd, err := s.fn(pkgPath, name)
	if err != nil {
		return nil, err
	}
	var out [][]string
	ast.Inspect(fd, func(n ast.Node) bool {
		sw, ok := n.(*ast.SwitchStmt)
		if !ok {
			return true
		}
		if tag != "" && (sw.Tag == nil || !strings.Contains(types.ExprString(sw.Tag), tag)) {
			return true
		}
		for _, st := range sw.Body.List {
			if vals := caseStrings(st.(*ast.CaseClause)); len(vals) > 0 {
				out = append(out, vals)
			}
		}
		return true
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%s.%s: no string cases", pkgPath, name)
	}
	return out, nil
}

// caseStrings returns the string literals of a case clause.
func caseStrings(cc *ast.CaseClause) []string {
	var vals []string
	for _, e := range cc.List {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil {
				vals = append(vals, v)
			}
		}
	}
	return vals
}

// AssignedFields returns the fields of variable v that function name of
// package pkgPath assigns to (v.Field = ...).
func (s *Source) AssignedFields(pkgPath, name, v string) ([]string, error) {
	fd, err := s.fn(pkgPath, name)
	if err != nil {
		return nil, err
	}
	var out []string
	ast.Inspect(fd, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return true
		}
		for _, l := range as.Lhs {
			if se, ok := l.(*ast.SelectorExpr); ok {
				if id, ok := se.X.(*ast.Ident); ok && id.Name == v {
					out = append(out, se.Sel.Name)
				}
			}
		}
		return true
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%s.%s: assigns no field of %s", pkgPath, name, v)
	}
	return out, nil
}
