package greeting

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzHello checks Hello and HelloAgain against their definition for any
// string, valid UTF-8 or not.
func FuzzHello(f *testing.F) {
	for _, s := range []string{"Ada", "", "  Grace \t", "\u00a0Linus\u3000", "Zoë", "\xff\xfe", "\x00", strings.Repeat("ж", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		trimmed := strings.TrimSpace(name)
		if got, want := Hello(name), "Hello, "+trimmed+"!"; got != want {
			t.Fatalf("Hello(%q) = %q, want %q", name, got, want)
		}
		if got, want := HelloAgain(name), "Hello again, "+trimmed+"!"; got != want {
			t.Fatalf("HelloAgain(%q) = %q, want %q", name, got, want)
		}
	})
}

// crowdReference is Crowd.Greeting written the obvious way, with every name
// kept: the fuzzer checks the bounded-memory version against it.
func crowdReference(names []string) string {
	if len(names) == 0 {
		return "Hello!"
	}
	listed := names[:min(len(names), MaxListed)]
	trimmed := make([]string, len(listed))
	for i, n := range listed {
		trimmed[i] = strings.TrimSpace(n)
	}
	rest := len(names) - len(listed)
	switch {
	case rest == 1:
		return "Hello, " + strings.Join(trimmed, ", ") + " and 1 other!"
	case rest > 1:
		return "Hello, " + strings.Join(trimmed, ", ") + " and " + strconv.Itoa(rest) + " others!"
	case len(trimmed) == 1:
		return "Hello, " + trimmed[0] + "!"
	default:
		return "Hello, " + strings.Join(trimmed[:len(trimmed)-1], ", ") + " and " + trimmed[len(trimmed)-1] + "!"
	}
}

// FuzzCrowd splits the input into names on "|" and repeats the last one
// extra times, so crowds from empty to past MaxListed are explored.
func FuzzCrowd(f *testing.F) {
	f.Add("Ada", uint16(0))
	f.Add("Ada|Grace", uint16(0))
	f.Add("Ada| Grace |Linus", uint16(0))
	f.Add("A|B|C|D|E|F|G|H|I|J", uint16(1))
	f.Add("x", uint16(989))
	f.Add("", uint16(0))
	f.Add("\xff|\t|", uint16(20))
	f.Fuzz(func(t *testing.T, joined string, extra uint16) {
		names := strings.Split(joined, "|")
		for range extra {
			names = append(names, names[len(names)-1])
		}
		var c Crowd
		for _, n := range names {
			c.Add(n)
		}
		if c.Count() != int64(len(names)) {
			t.Fatalf("Count() = %d, want %d", c.Count(), len(names))
		}
		if got, want := c.Greeting(), crowdReference(names); got != want {
			t.Fatalf("Greeting() of %q = %q, want %q", names, got, want)
		}
		var empty Crowd
		if got := empty.Greeting(); got != "Hello!" {
			t.Fatalf("empty crowd: %q", got)
		}
	})
}
