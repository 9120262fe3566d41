package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// The second online service: an HTTP endpoint that does real CPU work per
// request, the shape of a typical API backend: build a JSON document from
// the request, encode it, decode it back, and hash the encoding, rounds
// times. Unlike redis (mostly syscalls and memory), its latency is
// dominated by user-space CPU, so it shows what CPU interference does to
// a compute-bound service.

type workItem struct {
	ID    int64             `json:"id"`
	Name  string            `json:"name"`
	Score float64           `json:"score"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
}

// cpuWork does the per-request work for seed and returns a digest that
// depends on every step, so none can be skipped.
func cpuWork(seed int64, items, rounds int) (string, error) {
	doc := make([]workItem, items)
	for i := range doc {
		v := seed*1_000_003 + int64(i)
		doc[i] = workItem{
			ID: v, Name: "item-" + strconv.FormatInt(v, 36), Score: float64(v%9973) / 7,
			Tags:  []string{"a" + strconv.Itoa(i%7), "b" + strconv.Itoa(i%11)},
			Attrs: map[string]string{"k": strconv.FormatInt(v%101, 10), "seed": strconv.FormatInt(seed, 10)},
		}
	}
	h := sha256.New()
	for r := range rounds {
		b, err := json.Marshal(doc)
		if err != nil {
			return "", fmt.Errorf("encode: %w", err)
		}
		h.Write(b)
		var back []workItem
		if err := json.Unmarshal(b, &back); err != nil {
			return "", fmt.Errorf("decode: %w", err)
		}
		back[r%len(back)].Score += float64(r)
		doc = back
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cpuHandler serves GET /work?seed=N with cpuWork's digest.
func cpuHandler(items, rounds int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) {
		seed, err := strconv.ParseInt(r.URL.Query().Get("seed"), 10, 64)
		if err != nil {
			http.Error(w, "seed: not an integer", http.StatusBadRequest)
			return
		}
		d, err := cpuWork(seed, items, rounds)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, d)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

// serveCPU runs the service on addr until ctx ends.
func serveCPU(ctx context.Context, addr string, items, rounds int) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cpu service: %w", err)
	}
	srv := &http.Server{Handler: cpuHandler(items, rounds), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && ctx.Err() == nil {
		return fmt.Errorf("cpu service: %w", err)
	}
	return nil
}

// httpDoer asks the service for /work with the request index as seed, on
// a client of its own (one keep-alive connection per worker).
type httpDoer struct {
	client *http.Client
	base   string
	buf    []byte
}

func newHTTPDoer(addr string) *httpDoer {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
	return &httpDoer{client: &http.Client{Transport: tr}, base: "http://" + addr + "/work?seed="}
}

func (d *httpDoer) do(ctx context.Context, i int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+strconv.FormatInt(i, 10), nil)
	if err != nil {
		return err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if d.buf == nil {
		d.buf = make([]byte, 128)
	}
	n, _ := io.ReadFull(resp.Body, d.buf)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu service: %s: %s", resp.Status, d.buf[:n])
	}
	if n != 64 {
		return fmt.Errorf("cpu service: answer of %d bytes, want a 64-digit digest", n)
	}
	return nil
}
