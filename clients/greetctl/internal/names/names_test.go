package names_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/acme/greeter/clients/greetctl/internal/names"
)

func collect(seq func(func(string, error) bool)) ([]string, error) {
	var out []string
	for name, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, name)
	}
	return out, nil
}

func TestFromArgs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{"arguments", []string{"Ada", "Grace"}, "ignored\n", []string{"Ada", "Grace"}},
		{"no arguments reads stdin", nil, "Ada\nGrace\n", []string{"Ada", "Grace"}},
		{"dash reads stdin", []string{"-"}, "Ada\r\n\n  \nGrace", []string{"Ada", "  ", "Grace"}},
		{"dash among names is a name", []string{"Ada", "-"}, "", []string{"Ada", "-"}},
		{"empty stdin", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(names.FromArgs(context.Background(), tt.args, strings.NewReader(tt.stdin)))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLinesReadError(t *testing.T) {
	boom := errors.New("boom")
	got, err := collect(names.Lines(context.Background(), io.MultiReader(strings.NewReader("Ada\n"), iotest.ErrReader(boom))))
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("got %q, %v; want [Ada] and boom", got, err)
	}
}

// TestLinesCanceled checks that a canceled context stops a read that would
// block forever, as Ctrl-C must.
func TestLinesCanceled(t *testing.T) {
	blocked, w := io.Pipe()
	t.Cleanup(func() { w.Close() }) // Ends the reading goroutine.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := collect(names.Lines(ctx, blocked))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
