package configdoc

import (
	"fmt"
	"io"
	"strings"
)

// Markdown writes keys as the reference: intro, then one table per
// top-level section (the top-level values first).
func Markdown(w io.Writer, intro string, keys []Key) error {
	var b strings.Builder
	b.WriteString(intro)
	type group struct {
		head Key
		rows []Key
	}
	var top group
	top.head = Key{Path: "", Doc: "The keys at the top level of the file that hold a value."}
	var groups []*group
	byTop := map[string]*group{}
	for _, k := range keys {
		root, _, nested := strings.Cut(strings.ReplaceAll(k.Path, "[]", ""), ".")
		switch {
		case !nested && !k.Section:
			top.rows = append(top.rows, k)
		case !nested:
			g := &group{head: k}
			groups = append(groups, g)
			byTop[root] = g
		default:
			byTop[root].rows = append(byTop[root].rows, k)
		}
	}
	writeTable(&b, "Top-level values", top.rows)
	for _, g := range groups {
		h := g.head
		fmt.Fprintf(&b, "\n## `%s`\n\n%s — %s. SIGHUP: %s.\n", h.Path, h.Doc, h.Type, h.Reload)
		writeTable(&b, "", g.rows)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTable writes one table of keys.
func writeTable(b *strings.Builder, title string, rows []Key) {
	if title != "" {
		fmt.Fprintf(b, "\n## %s\n", title)
	}
	b.WriteString("\n| Key | Type | Default | Allowed | SIGHUP | Description |\n|---|---|---|---|---|---|\n")
	for _, k := range rows {
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s | %s |\n", k.Path, cell(k.Type), code(k.Default),
			cell(k.Allowed), cell(k.Reload), cell(k.Doc))
	}
}

// cell escapes s for a table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// code formats a default: literal values as code, prose as is.
func code(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, " ") {
		return cell(s)
	}
	return "`" + cell(s) + "`"
}
