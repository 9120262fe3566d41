package main

import (
	"context"
	"net/http/httptest"
	"testing"
)

func TestCPUWorkDependsOnSeedAndRounds(t *testing.T) {
	a1, err := cpuWork(1, 20, 3)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := cpuWork(1, 20, 3)
	b, _ := cpuWork(2, 20, 3)
	c, _ := cpuWork(1, 20, 4)
	if a1 != a2 {
		t.Errorf("same seed gave %s and %s", a1, a2)
	}
	if a1 == b || a1 == c {
		t.Errorf("digest does not depend on seed or rounds: %s %s %s", a1, b, c)
	}
}

func TestHTTPDoer(t *testing.T) {
	srv := httptest.NewServer(cpuHandler(10, 2))
	defer srv.Close()
	d := newHTTPDoer(srv.Listener.Addr().String())
	for i := range int64(3) {
		if err := d.do(context.Background(), i); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	bad := newHTTPDoer(srv.Listener.Addr().String())
	bad.base = "http://" + srv.Listener.Addr().String() + "/work?seed=x"
	if err := bad.do(context.Background(), 1); err == nil {
		t.Fatal("a 400 answer was not an error")
	}
}
