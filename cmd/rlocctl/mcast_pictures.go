package main

import (
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/internal/render"
	"github.com/rloc-router/rloc/router"
)

// Picture formats of -o, for the commands that list them in their
// formatsAnnotation.
const (
	fmtDot = "dot"
	fmtSVG = "svg"
	// formatsAnnotation is a command's annotation naming, space-separated,
	// the -o formats it offers beyond table, json and yaml.
	formatsAnnotation = "rlocctl-extra-formats"
)

// extraFormats are the -o formats cmd offers beyond table, json and yaml.
func extraFormats(cmd *cobra.Command) []string {
	return strings.Fields(cmd.Annotations[formatsAnnotation])
}

// checkFormatFor checks -o f for cmd: table, json, yaml, and the formats
// the command adds.
func checkFormatFor(cmd *cobra.Command, f string) error {
	extra := extraFormats(cmd)
	switch {
	case checkFormat(f) == nil || slices.Contains(extra, f):
		return nil
	case len(extra) == 0:
		return checkFormat(f)
	}
	return fmt.Errorf("unknown output format %q: want -o table, json, yaml or %s", f, strings.Join(extra, ", "))
}

// completeFormats completes -o with the formats of the command at hand.
func completeFormats(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return filterPrefix(append([]string{fmtTable, fmtJSON, fmtYAML}, extraFormats(cmd)...), toComplete), cobra.ShellCompDirectiveNoFileComp
}

// mcastTree shows the replication tree of args (S G), or every tree the
// router knows without args: a table of the router's view, JSON or YAML
// of it, or a picture of the trees (-o dot: Graphviz's input, -o svg: an
// SVG drawn by rlocctl, no Graphviz needed).
func (o *options) mcastTree(iid uint32, args []string) error {
	if len(args) == 0 {
		return list(o, "mcast tree", "/v1/mcast/trees", func(w io.Writer, vs []router.McastTreeView) {
			o.printTrees(w, "replication trees", vs)
		})
	}
	q := url.Values{"iid": {strconv.FormatUint(uint64(iid), 10)}, "source": {args[0]}, "group": {args[1]}}
	title := "mcast tree " + args[0] + " " + args[1]
	return list(o, title, "/v1/mcast/tree?"+q.Encode(), func(w io.Writer, v router.McastTreeView) {
		o.printTrees(w, "replication tree "+v.SG(), []router.McastTreeView{v})
	})
}

// picture prints gs as a picture when -o is dot or svg, and says whether
// it did.
func (o *options) picture(w io.Writer, title string, gs ...render.Graph) bool {
	switch o.output {
	case fmtDot:
		_ = render.Dot(w, title, gs)
	case fmtSVG:
		io.WriteString(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
		_ = render.SVG(w, title, gs)
	default:
		return false
	}
	return true
}

// printTrees prints trees as text, or as a picture with -o dot|svg.
func (o *options) printTrees(w io.Writer, title string, vs []router.McastTreeView) {
	if o.picture(w, title, router.Pictures(vs)...) {
		return
	}
	if len(vs) == 0 {
		io.WriteString(w, "no replication trees\n")
	}
	for i, v := range vs {
		if i > 0 {
			io.WriteString(w, "\n")
		}
		io.WriteString(w, strings.TrimRight(v.Text, "\n")+"\n")
	}
}
