package mixed

import (
	"embed"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

var _ embed.FS

func g(t time.Time, seed uint64, w *strings.Builder) (time.Time, int, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	fmt.Fprintf(w, "%d", r.IntN(3))
	time := struct{ Now int }{}
	return t.Add(clock(time.Now)), r.IntN(6), io.EOF
}

func clock(n int) time.Duration { return time.Duration(n) * time.Second }
