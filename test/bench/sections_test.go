package bench

import (
	"strings"
	"testing"
)

// TestUpdate: a run of some tables replaces only their sections in the
// report file, adding those it lacks; a run of every table, or a file with
// nothing after the marker, gets the whole report; the hand-written part
// always stays.
func TestUpdate(t *testing.T) {
	all := Report{}
	for _, name := range sectionOrder {
		all.sections = append(all.sections, section{name: name, markdown: "### " + name + " new\n\nrow\n"})
	}
	overloadOnly := Report{sections: []section{{name: sectionOverload, markdown: "### overload new\n"}}}
	old := func(names ...string) string {
		doc := "# Performance\n\nhand-written, quoting `" + Marker + "` and `" + section{name: sectionOverload}.begin() + "`\n\n" + Marker + "\n\n" + heading
		for _, n := range names {
			doc += section{name: n, markdown: "### " + n + " old\n"}.block() + "\n\n"
		}
		return doc
	}
	for _, tc := range []struct {
		name      string
		rep       Report
		doc       string
		want, not []string
	}{
		{"every table", all, old(sectionCPU, sectionOverload) + "stale\n",
			[]string{"hand-written", "### cpu new", "### idle new", "### overload new"}, []string{"old", "stale"}},
		{"one table, in place", overloadOnly, old(sectionCPU, sectionCapacity, sectionOverload, sectionIdle),
			[]string{"hand-written", "### cpu old", "### capacity old", "### overload new", "### idle old"}, []string{"### overload old"}},
		{"one table, new to the file", overloadOnly, old(sectionCPU),
			[]string{"hand-written", "### cpu old", "### overload new"}, nil},
		{"one table, new to the file, before a later one", overloadOnly, old(sectionCPU, sectionIdle),
			[]string{"hand-written", "### cpu old", "### overload new", "### idle old"}, nil},
		{"nothing after the marker", overloadOnly, "hand-written\n" + Marker + "\n",
			[]string{"hand-written", heading, "### overload new"}, nil},
		{"no marker", overloadOnly, "whatever\n",
			[]string{Marker, "### overload new"}, []string{"whatever"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.rep.Update(tc.doc)
			for _, w := range tc.want {
				if strings.Count(got, w) != 1 {
					t.Errorf("%q %d times, want once:\n%s", w, strings.Count(got, w), got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("%q left in:\n%s", n, got)
				}
			}
			if i := lineIndex(tc.doc, Marker); i >= 0 && !strings.HasPrefix(got, tc.doc[:i]) {
				t.Errorf("the hand-written part changed:\n%s", got)
			}
			// Sections in report order.
			last := -1
			for _, name := range sectionOrder {
				if i := lineIndex(got, section{name: name}.begin()); i >= 0 {
					if i < last {
						t.Errorf("section %s out of order:\n%s", name, got)
					}
					last = i
				}
			}
			// Updating again with the same report changes nothing.
			if again := tc.rep.Update(got); again != got {
				t.Errorf("a second update changed the file:\n%s\nthen:\n%s", got, again)
			}
		})
	}
}
