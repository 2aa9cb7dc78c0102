// Package names reads the names to greet from arguments or, one per line,
// from standard input.
package names

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
)

// FromArgs yields args, reading stdin instead when args is empty or is the
// single argument "-".
func FromArgs(ctx context.Context, args []string, stdin io.Reader) iter.Seq2[string, error] {
	if ReadsStdin(args) {
		return Lines(ctx, stdin)
	}
	return func(yield func(string, error) bool) {
		for _, a := range args {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// ReadsStdin reports whether FromArgs reads standard input for args.
func ReadsStdin(args []string) bool {
	return len(args) == 0 || (len(args) == 1 && args[0] == "-")
}

type line struct {
	text string
	err  error
}

// Lines yields the lines of r as they arrive, without their line ending.
// Empty lines are skipped so that a stray newline does not send an empty
// name; any other line is sent as is and left to the server to validate.
//
// A read from a terminal cannot be interrupted, so r is read on its own
// goroutine and Lines stops with ctx's error as soon as ctx is done: Ctrl-C
// must not wait for the next line. That goroutine ends at the next line or
// EOF, or with the process.
func Lines(ctx context.Context, r io.Reader) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		lines := make(chan line)
		done := make(chan struct{})
		defer close(done)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				select {
				case lines <- line{text: strings.TrimSuffix(sc.Text(), "\r")}:
				case <-done:
					return
				}
			}
			if err := sc.Err(); err != nil {
				select {
				case lines <- line{err: fmt.Errorf("read names from standard input: %w", err)}:
				case <-done:
				}
			}
		}()
		for {
			select {
			case <-ctx.Done():
				yield("", ctx.Err())
				return
			case l, ok := <-lines:
				switch {
				case !ok:
					return
				case l.err != nil:
					yield("", l.err)
					return
				case l.text == "":
					continue
				case !yield(l.text, nil):
					return
				}
			}
		}
	}
}

// Interactive reports whether r is a terminal, where a user types the names
// and should be told how to end the input.
func Interactive(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
