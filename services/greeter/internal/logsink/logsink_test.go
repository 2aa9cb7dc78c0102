package logsink

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is the test's stand-in for stderr.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	wrote  chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 100)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	s.wrote <- struct{}{}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func TestWriterBatchesAndFlushesLater(t *testing.T) {
	out := newSyncBuffer()
	w := New(out)
	for range 100 {
		if _, err := w.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
	}
	if n := out.count(); n != 0 {
		t.Fatalf("%d writes reached the output before the flush interval", n)
	}
	select {
	case <-out.wrote:
	case <-time.After(10 * FlushInterval):
		t.Fatal("nothing was flushed within ten flush intervals")
	}
	if got := strings.Count(out.String(), "line\n"); got != 100 || out.count() != 1 {
		t.Errorf("%d lines in %d writes, want 100 lines in one write", got, out.count())
	}
}

func TestWriterFullBufferWritesAtOnce(t *testing.T) {
	out := newSyncBuffer()
	w := New(out)
	big := bytes.Repeat([]byte("x"), bufferSize+1)
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	if out.count() == 0 {
		t.Fatal("a write larger than the buffer was held back")
	}
}

func TestCloseFlushesAndUnbuffers(t *testing.T) {
	out := newSyncBuffer()
	w := New(out)
	w.Write([]byte("before\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "before\n" {
		t.Fatalf("after Close: %q", out.String())
	}
	w.Write([]byte("after\n"))
	if out.String() != "before\nafter\n" {
		t.Fatalf("a write after Close was held back: %q", out.String())
	}
}

func TestHandlerFlushesWarningsAtOnce(t *testing.T) {
	out := newSyncBuffer()
	w := New(out)
	logger := slog.New(Handler(slog.NewTextHandler(w, nil), w, slog.LevelWarn)).With("component", "test")
	logger.Info("routine")
	if out.count() != 0 {
		t.Fatal("an info line was flushed at once")
	}
	logger.Warn("trouble")
	got := out.String()
	if !strings.Contains(got, "msg=routine") || !strings.Contains(got, "msg=trouble") || !strings.Contains(got, "component=test") {
		t.Fatalf("after a warning, output is %q; want both lines, with attributes", got)
	}
}
