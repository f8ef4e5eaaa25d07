package slowpath

import (
	"go/build"
	"os"
	"path"
	"strings"
	"testing"
)

// notRoles are the packages under slowpath/ that are not roles: the
// assembly, the shared primitives and the next-hop watcher.
var notRoles = map[string]bool{"control": true, "regstore": true, "request": true, "neigh": true}

const modPath = "github.com/rloc-router/rloc/slowpath"

// TestRolesImportNoRole: a role package imports no other role package,
// and the core imports none at all (roles meet through small interfaces).
func TestRolesImportNoRole(t *testing.T) {
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]bool{}
	for _, e := range ents {
		if e.IsDir() && !notRoles[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			roles[modPath+"/"+e.Name()] = true
		}
	}
	if len(roles) == 0 {
		t.Fatal("no role package found")
	}
	check := func(dir, self string) {
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, imp := range p.Imports {
			if roles[imp] && imp != self {
				t.Errorf("%s imports the role package %s", self, imp)
			}
		}
	}
	check(".", modPath)
	for r := range roles {
		check(path.Base(r), r)
	}
}
