package greeting

import (
	"fmt"
	"strings"
	"testing"
)

func TestHello(t *testing.T) {
	tests := []struct {
		name, hello, again string
	}{
		{"Ada", "Hello, Ada!", "Hello again, Ada!"},
		{"  Grace \t", "Hello, Grace!", "Hello again, Grace!"},
		{"\u00a0Linus\u3000", "Hello, Linus!", "Hello again, Linus!"},
		{"Jean Luc", "Hello, Jean Luc!", "Hello again, Jean Luc!"},
		{"Zoë", "Hello, Zoë!", "Hello again, Zoë!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Hello(tt.name); got != tt.hello {
				t.Errorf("Hello(%q) = %q, want %q", tt.name, got, tt.hello)
			}
			if got := HelloAgain(tt.name); got != tt.again {
				t.Errorf("HelloAgain(%q) = %q, want %q", tt.name, got, tt.again)
			}
		})
	}
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('A' + i%26))
	}
	return out
}

func TestCrowdGreeting(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{nil, "Hello!"},
		{[]string{"Ada"}, "Hello, Ada!"},
		{[]string{"Ada", " Grace "}, "Hello, Ada and Grace!"},
		{[]string{"Ada", "Grace", "Linus"}, "Hello, Ada, Grace and Linus!"},
		{names(10), "Hello, A, B, C, D, E, F, G, H, I and J!"},
		{names(11), "Hello, A, B, C, D, E, F, G, H, I, J and 1 other!"},
		{names(1000), "Hello, A, B, C, D, E, F, G, H, I, J and 990 others!"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(len(tt.names)), func(t *testing.T) {
			var c Crowd
			for _, n := range tt.names {
				c.Add(n)
			}
			if got := c.Greeting(); got != tt.want {
				t.Errorf("Greeting() = %q, want %q", got, tt.want)
			}
			if c.Count() != int64(len(tt.names)) {
				t.Errorf("Count() = %d, want %d", c.Count(), len(tt.names))
			}
		})
	}
}

// TestCrowdGreetingSizedExactly guards the single-allocation promise: the
// Builder must never grow past its precomputed size.
func TestCrowdGreetingSizedExactly(t *testing.T) {
	for n := 1; n <= 25; n++ {
		var c Crowd
		for _, name := range names(n) {
			c.Add(name + strings.Repeat("x", n))
		}
		if allocs := testing.AllocsPerRun(10, func() { _ = c.Greeting() }); allocs > 1 {
			t.Errorf("%d names: %v allocs, want <= 1", n, allocs)
		}
	}
}

func TestHelloAllocs(t *testing.T) {
	name := " Ada "
	if allocs := testing.AllocsPerRun(100, func() { _ = Hello(name) }); allocs > 1 {
		t.Errorf("Hello: %v allocs, want <= 1", allocs)
	}
	var c Crowd
	if allocs := testing.AllocsPerRun(100, func() { c.Add(name) }); allocs != 0 {
		t.Errorf("Crowd.Add: %v allocs, want 0", allocs)
	}
}

// sink keeps benchmark results alive, so the compiler cannot keep them on
// the stack and hide the allocation a real caller pays.
var sink string

func BenchmarkHello(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = Hello(" Ada Lovelace ")
	}
}

func BenchmarkCrowd1000(b *testing.B) {
	ns := names(1000)
	b.ReportAllocs()
	for b.Loop() {
		var c Crowd
		for _, n := range ns {
			c.Add(n)
		}
		sink = c.Greeting()
	}
}
