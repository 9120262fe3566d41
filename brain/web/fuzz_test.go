package web

import (
	"net/url"
	"testing"
)

// FuzzParseQuery: any query string is either refused with an error or
// gives a query within bounds whose URL form parses back to itself.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "q=host-1&state=down", "safety=unsafe&sort=kills&page=3&per_page=500", "page=-1", "q=zone%3Da", "per_page=0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			return
		}
		if q.Page < 1 || q.PerPage < 1 || q.PerPage > MaxPerPage {
			t.Fatalf("%q: out of bounds %+v", raw, q)
		}
		back, err := ParseQuery(q.Values(q.Page))
		if err != nil || back != q {
			t.Fatalf("%q: %+v does not round-trip: %+v %v", raw, q, back, err)
		}
	})
}
