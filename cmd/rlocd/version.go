package main

import (
	"fmt"
	"io"

	"github.com/rloc-router/rloc/internal/buildinfo"
)

// printVersion prints rlocd's build information to w when args ask for it
// (--version) and reports whether they did.
func printVersion(args []string, w io.Writer) bool {
	if !buildinfo.Requested(args) {
		return false
	}
	fmt.Fprintln(w, buildinfo.Read("rlocd"))
	return true
}
