package exitcode_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
)

func TestFromError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitcode.OK},
		{"local", errors.New("disk on fire"), exitcode.Failure},
		{"usage", exitcode.Usagef("bad flag"), exitcode.Usage},
		{"wrapped usage", fmt.Errorf("x: %w", exitcode.Usagef("bad flag")), exitcode.Usage},
		{"explicit", exitcode.New(exitcode.Unavailable, errors.New("not serving")), exitcode.Unavailable},
		{"canceled context", context.Canceled, exitcode.Interrupted},
		{"expired context", fmt.Errorf("read: %w", context.DeadlineExceeded), exitcode.DeadlineExceeded},
		{"status", status.Error(codes.NotFound, "x"), exitcode.Rejected},
		{"wrapped status", fmt.Errorf("call: %w", status.Error(codes.PermissionDenied, "x")), exitcode.Auth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitcode.FromError(tt.err); got != tt.want {
				t.Errorf("FromError(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// TestForCodeCoversEveryCode pins the class of every gRPC code.
func TestForCodeCoversEveryCode(t *testing.T) {
	want := map[codes.Code]int{
		codes.OK:                 exitcode.OK,
		codes.Canceled:           exitcode.Interrupted,
		codes.Unknown:            exitcode.ServerError,
		codes.InvalidArgument:    exitcode.Rejected,
		codes.DeadlineExceeded:   exitcode.DeadlineExceeded,
		codes.NotFound:           exitcode.Rejected,
		codes.AlreadyExists:      exitcode.Rejected,
		codes.PermissionDenied:   exitcode.Auth,
		codes.ResourceExhausted:  exitcode.ResourceExhausted,
		codes.FailedPrecondition: exitcode.Rejected,
		codes.Aborted:            exitcode.ServerError,
		codes.OutOfRange:         exitcode.Rejected,
		codes.Unimplemented:      exitcode.ServerError,
		codes.Internal:           exitcode.ServerError,
		codes.Unavailable:        exitcode.Unavailable,
		codes.DataLoss:           exitcode.ServerError,
		codes.Unauthenticated:    exitcode.Auth,
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if got := exitcode.ForCode(c); got != want[c] {
			t.Errorf("ForCode(%s) = %d, want %d", c, got, want[c])
		}
	}
}

// TestTable: each exit status and each gRPC code has one row, and each
// row's help names its gRPC codes exactly once.
func TestTable(t *testing.T) {
	exits, grpcCodes := map[int]bool{}, map[codes.Code]bool{}
	for _, s := range exitcode.Table {
		if exits[s.Code] {
			t.Errorf("exit status %d has two rows", s.Code)
		}
		exits[s.Code] = true
		for _, c := range s.GRPC {
			if grpcCodes[c] {
				t.Errorf("%s is in two rows", c)
			}
			grpcCodes[c] = true
		}
		if verbs := strings.Count(s.Help, "%"); verbs != min(len(s.GRPC), 1) || (verbs == 1 && !strings.Contains(s.Help, "%s")) {
			t.Errorf("exit status %d: help %q has %d verbs for %d gRPC codes, want one %%s for any", s.Code, s.Help, verbs, len(s.GRPC))
		}
	}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		if !grpcCodes[c] {
			t.Errorf("%s is in no row", c)
		}
	}
}

// TestHelp: one status per line, continuation lines indented, none wider
// than a terminal.
func TestHelp(t *testing.T) {
	help := exitcode.Help()
	lines := strings.Split(help, "\n")
	if lines[0] != "Exit status:" {
		t.Errorf("first line %q", lines[0])
	}
	rows := 0
	for _, l := range lines[1:] {
		if len(l) > 80 {
			t.Errorf("line wider than 80 columns: %q", l)
		}
		if !strings.HasPrefix(l, "       ") {
			rows++
		}
	}
	if rows != len(exitcode.Table) {
		t.Errorf("%d rows, want %d:\n%s", rows, len(exitcode.Table), help)
	}
}

// TestREADMEAgrees: the README's exit status table, written for people,
// has a row per status naming the same gRPC codes.
func TestREADMEAgrees(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for l := range strings.Lines(string(readme)) {
		if cells := strings.Split(l, "|"); len(cells) == 4 && strings.TrimSpace(cells[0]) == "" {
			rows[strings.TrimSpace(cells[1])] = cells[2]
		}
	}
	for _, s := range exitcode.Table {
		row, ok := rows[strconv.Itoa(s.Code)]
		if !ok {
			t.Errorf("README.md has no row for exit status %d", s.Code)
			continue
		}
		for _, c := range s.GRPC {
			if !strings.Contains(row, "`"+c.String()+"`") {
				t.Errorf("README.md's row for exit status %d does not name %s: %s", s.Code, c, row)
			}
		}
	}
}
