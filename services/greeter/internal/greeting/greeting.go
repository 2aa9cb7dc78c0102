// Package greeting is the greeter's core: how people are greeted, as pure
// functions with no I/O, shared by every RPC of both contracts.
//
// Names are expected to be valid already (see package validate); the core
// only trims surrounding white space. Each function allocates at most once:
// the returned string.
package greeting

import (
	"strconv"
	"strings"
)

// Hello greets one person: "Hello, <name>!".
func Hello(name string) string {
	return "Hello, " + strings.TrimSpace(name) + "!"
}

// HelloAgain greets one person again: "Hello again, <name>!".
func HelloAgain(name string) string {
	return "Hello again, " + strings.TrimSpace(name) + "!"
}

// MaxListed is how many names a Crowd greets by name; the rest are counted.
const MaxListed = 10

// Crowd gathers the names of a group greeted all at once. It keeps only the
// first MaxListed names and a count, so gathering a million names uses the
// same memory as gathering eleven. The zero value is an empty crowd.
type Crowd struct {
	listed [MaxListed]string
	count  int64
}

// Add adds one name to the crowd.
func (c *Crowd) Add(name string) {
	if c.count < MaxListed {
		c.listed[c.count] = strings.TrimSpace(name)
	}
	c.count++
}

// Count is how many names were added.
func (c *Crowd) Count() int64 { return c.count }

// Greeting greets the whole crowd: "Hello, Ada!", "Hello, Ada and Grace!",
// "Hello, Ada, Grace and Linus!", and past MaxListed names
// "Hello, A, B, ..., J and 990 others!" ("and 1 other!" for eleven). An
// empty crowd is greeted "Hello!"; callers reject empty crowds before that.
func (c *Crowd) Greeting() string {
	listed := c.listed[:min(c.count, MaxListed)]
	if len(listed) == 0 {
		return "Hello!"
	}
	rest := c.count - int64(len(listed))

	// Size the result exactly so that building it is the one allocation.
	var num [20]byte
	digits := strconv.AppendInt(num[:0], rest, 10)
	size := len("Hello, ") + len("!")
	for _, n := range listed {
		size += len(n)
	}
	size += (len(listed) - 1) * len(", ")
	if rest > 0 {
		size += len(" and ") + len(digits) + len(" others")
	} else if len(listed) > 1 {
		size += len(" and ") - len(", ")
	}

	var b strings.Builder
	b.Grow(size)
	b.WriteString("Hello, ")
	for i, n := range listed {
		if i > 0 {
			if rest == 0 && i == len(listed)-1 {
				b.WriteString(" and ")
			} else {
				b.WriteString(", ")
			}
		}
		b.WriteString(n)
	}
	if rest > 0 {
		b.WriteString(" and ")
		b.Write(digits)
		if rest == 1 {
			b.WriteString(" other")
		} else {
			b.WriteString(" others")
		}
	}
	b.WriteString("!")
	return b.String()
}
