package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEverySubcommandHasHelpAndExample walks the command tree: every
// command has a one-line help, and every command that runs (not a group
// that only holds others, not cobra's own completion and help) has
// examples that invoke it.
func TestEverySubcommandHasHelpAndExample(t *testing.T) {
	root := newRoot(&options{ctx: t.Context()})
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c == root || c.Name() == "completion" || c.Name() == "help" ||
			(c.Parent() != nil && c.Parent().Name() == "completion") {
			return
		}
		n++
		path := c.CommandPath()
		if strings.TrimSpace(c.Short) == "" {
			t.Errorf("%q has no short help", path)
		}
		if !c.Runnable() || (c.HasSubCommands() && c.Example == "") {
			return // a group: its subcommands carry the examples
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no example", path)
			return
		}
		if !strings.Contains(c.Example, path) {
			t.Errorf("%q: the examples do not invoke it:\n%s", path, c.Example)
		}
	}
	walk(root)
	if n < 20 {
		t.Fatalf("walked %d commands: the tree is not the one rlocctl runs", n)
	}
}
