package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Output formats of -o.
const (
	fmtTable = "table"
	fmtJSON  = "json"
	fmtYAML  = "yaml"
)

// options is the state shared by every command of one invocation.
type options struct {
	ctx context.Context
	out io.Writer
	// errOut receives notes that must not mix with the output (the next
	// page's cursor); nil is os.Stderr.
	errOut io.Writer
	sock   string
	output string
	// watch is the refresh interval of --watch (0: print once).
	watch time.Duration
	// maxWatch, when positive, ends --watch after that many refreshes (a
	// test hook; an operator ends it with Ctrl-C).
	maxWatch int
	// clear, when true, clears the screen before each --watch refresh of a
	// table (set when the output is a terminal).
	clear bool
}

func (o *options) client() *client { return newClient(o.sock) }

// stderr is errOut or os.Stderr.
func (o *options) stderr() io.Writer {
	if o.errOut != nil {
		return o.errOut
	}
	return os.Stderr
}

func checkFormat(f string) error {
	switch f {
	case fmtTable, fmtJSON, fmtYAML:
		return nil
	}
	return fmt.Errorf("unknown output format %q: want -o table, -o json or -o yaml", f)
}

// emit prints v in the chosen format; table prints the human form.
func (o *options) emit(v any, table func(io.Writer) error) error {
	switch o.output {
	case fmtJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = o.out.Write(append(b, '\n'))
		return err
	case fmtYAML:
		b, err := toYAML(v)
		if err != nil {
			return err
		}
		_, err = o.out.Write(b)
		return err
	}
	return table(o.out)
}

// toYAML renders v as YAML with the keys and key order of its JSON form
// (the API's field names, not Go's).
func toYAML(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(js, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// blockStyle drops the flow style and quoting that parsing JSON leaves, so
// the encoder writes ordinary block YAML (it still quotes strings that
// would otherwise read as another type).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// show fetches and prints once, or with --watch every interval until
// interrupted (or maxWatch refreshes).
func (o *options) show(title string, fetch func(context.Context) (any, func(io.Writer) error, error)) error {
	for i := 0; ; i++ {
		v, table, err := fetch(o.ctx)
		if err != nil {
			if o.watch > 0 && o.ctx.Err() != nil {
				return nil // interrupted
			}
			return err
		}
		if o.watch > 0 {
			switch {
			case o.output != fmtTable:
				if o.output == fmtYAML && i > 0 {
					fmt.Fprintln(o.out, "---")
				}
			case o.clear:
				fmt.Fprint(o.out, "\x1b[H\x1b[2J")
				fallthrough
			default:
				fmt.Fprintf(o.out, "Every %s: rlocctl %s    %s\n\n", o.watch, title, time.Now().Format("15:04:05"))
			}
		}
		if err := o.emit(v, table); err != nil {
			return err
		}
		if o.watch <= 0 || (o.maxWatch > 0 && i+1 >= o.maxWatch) {
			return nil
		}
		if o.output == fmtTable && !o.clear {
			fmt.Fprintln(o.out)
		}
		t := time.NewTimer(o.watch)
		select {
		case <-o.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// addWatch gives cmd the --watch[=INTERVAL] flag.
func addWatch(cmd *cobra.Command, o *options) {
	cmd.Flags().DurationVarP(&o.watch, "watch", "w", 0, "refresh every `INTERVAL` until interrupted (--watch alone: every 2s)")
	cmd.Flags().Lookup("watch").NoOptDefVal = "2s"
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
