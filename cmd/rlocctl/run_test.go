package main

import (
	"context"
	"io"
)

// run executes one command line with output to out (the tests' entry).
func run(args []string, out io.Writer) error {
	return execute(&options{ctx: context.Background(), out: out}, args)
}
