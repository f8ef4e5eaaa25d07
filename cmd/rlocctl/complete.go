package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// completeTimeout bounds a completion's question to the daemon: a shell
// must not hang on a slow or absent rlocd.
const completeTimeout = 300 * time.Millisecond

// key is the part of a map-cache entry or database mapping completion needs.
type key struct {
	IID uint32 `json:"iid"`
	EID string `json:"eid"`
}

// keys asks the daemon for the keys of the listing at path; nil on any
// failure (completion stays silent).
func (o *options) keys(path string) []key {
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	var ks []key
	if err := newClient(o.sock).do(ctx, "GET", path, nil, &ks); err != nil {
		return nil
	}
	return ks
}

// iids returns the distinct instance-IDs of ks, sorted.
func iids(ks []key) []string {
	var ids []uint32
	for _, k := range ks {
		if !slices.Contains(ids, k.IID) {
			ids = append(ids, k.IID)
		}
	}
	slices.Sort(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatUint(uint64(id), 10)
	}
	return out
}

// completeKeys completes IID, then EID, from the running daemon's listing
// at path.
func (o *options) completeKeys(path string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []string
		switch len(args) {
		case 0:
			out = iids(o.keys(path))
		case 1:
			for _, k := range o.keys(path) {
				if strconv.FormatUint(uint64(k.IID), 10) == args[0] {
					out = append(out, k.EID)
				}
			}
		}
		return filterPrefix(out, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeIIDs completes a flag's instance-ID from the listing at path.
func (o *options) completeIIDs(path string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterPrefix(iids(o.keys(path)), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// fixed completes one of cands.
func fixed(cands ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterPrefix(cands, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func filterPrefix(cands []string, prefix string) []string {
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// genCmd is "gen man DIR": man pages from the command definitions.
func genCmd(root *cobra.Command) *cobra.Command {
	gen := &cobra.Command{
		Use:   "gen",
		Short: "Generate documentation from the command definitions",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("gen: want gen man DIR")
		},
	}
	gen.AddCommand(&cobra.Command{
		Use:     "man DIR",
		Short:   "Write a man page per command (rlocctl.1, rlocctl-map-cache.1, ...) into DIR",
		Example: "  rlocctl gen man /usr/local/share/man/man1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "RLOCCTL", Section: "1", Source: "rloc", Manual: "rloc manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return err
			}
			n, _ := filepath.Glob(filepath.Join(dir, "*.1"))
			cmd.Printf("wrote %d man pages to %s\n", len(n), dir)
			return nil
		},
	})
	return gen
}
