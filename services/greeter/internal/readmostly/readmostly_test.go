package readmostly

import (
	"sync"
	"testing"
)

// TestMap: a key's value is made once, however many readers ask for it at
// once, and every later read sees that value; other keys are apart.
func TestMap(t *testing.T) {
	var m Map[string, *int]
	if _, ok := m.Load("/a.S/M"); ok {
		t.Fatal("the zero Map has a value")
	}
	var made sync.Map
	var wg sync.WaitGroup
	got := make([]*int, 16)
	for i := range got {
		wg.Go(func() {
			method := "/a.S/M"
			if i%2 == 1 {
				method = "/a.S/N"
			}
			got[i] = m.LoadOrMake(method, func() *int {
				if _, again := made.LoadOrStore(method, true); again {
					t.Errorf("%s made twice", method)
				}
				return new(int)
			})
		})
	}
	wg.Wait()
	for i, v := range got {
		want, ok := m.Load([]string{"/a.S/M", "/a.S/N"}[i%2])
		if !ok || v != want {
			t.Errorf("call %d got %p, the map holds %p", i, v, want)
		}
	}
	if a, _ := m.Load("/a.S/M"); a == got[1] {
		t.Error("two methods share a value")
	}
}
