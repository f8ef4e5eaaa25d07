package testkit

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"
)

// Patience is how long WaitFor and WaitBlocked wait before they fail the
// test: long enough for a loaded 2-core machine, short enough to name a hang.
const Patience = 10 * time.Second

// WaitFor waits for something another goroutine, a process or the kernel
// does: it polls cond until cond returns nil and fails t after Patience,
// naming what it waited for and cond's last error (the state it last saw).
// Tests use it instead of sleeping for a time that is usually enough.
func WaitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for i := 0; ; i++ {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %v", Patience, what, err)
		}
		if i < 100 {
			runtime.Gosched() // most waits end within a few scheduler turns
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// WaitBlocked waits until some goroutine is blocked (on a channel, a
// select, a lock, I/O, a system call or a sleep) inside the function fn, named
// as in a stack trace (for example
// "github.com/rloc-router/rloc/ring/mem.(*Port).Wait"). A test calls it
// before it does what should wake that goroutine, so it tests the wake-up
// and not whichever of the two goroutines the scheduler ran first.
func WaitBlocked(t testing.TB, fn string) {
	t.Helper()
	WaitFor(t, "a goroutine blocked in "+fn, func() error {
		if blockedIn(stacks(), fn) {
			return nil
		}
		return errors.New("no goroutine is blocked there yet")
	})
}

// stacks returns the stack traces of all goroutines.
func stacks() []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// blockedIn reports whether the traces (runtime.Stack's format: one block
// per goroutine, "goroutine N [state]:" then two lines per frame, blocks
// separated by a blank line) hold a goroutine that is not running and has
// a frame in fn.
func blockedIn(traces []byte, fn string) bool {
	for _, g := range bytes.Split(traces, []byte("\n\n")) {
		header, frames, _ := bytes.Cut(g, []byte("\n"))
		_, state, ok := bytes.Cut(header, []byte(" ["))
		if !ok || bytes.HasPrefix(state, []byte("running")) || bytes.HasPrefix(state, []byte("runnable")) {
			continue
		}
		for _, line := range bytes.Split(frames, []byte("\n")) {
			if bytes.HasPrefix(line, []byte(fn+"(")) {
				return true
			}
		}
	}
	return false
}
