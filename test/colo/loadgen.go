package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// loadgenOptions configure one load generator run (the "loadgen"
// subcommand, started by the driver in the loadgen cgroup).
type loadgenOptions struct {
	service    string // "redis" or "http"
	addr       string
	ratePerSec float64 // 0: closed loop, as fast as conns allow (calibration)
	conns      int
	warmup     time.Duration
	duration   time.Duration
	keyspace   int64
	valueBytes int
}

func parseLoadgenFlags(args []string) (loadgenOptions, error) {
	var o loadgenOptions
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.service, "service", "redis", "redis or http")
	fs.StringVar(&o.addr, "addr", "", "service address host:port")
	fs.Float64Var(&o.ratePerSec, "rate", 0, "requests per second, open loop; 0 = closed loop (calibration)")
	fs.IntVar(&o.conns, "conns", 32, "connections, one worker each")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "load before the measured window")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured window")
	fs.Int64Var(&o.keyspace, "keyspace", 100000, "redis keys")
	fs.IntVar(&o.valueBytes, "value-bytes", 64, "redis value size")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.service != "redis" && o.service != "http":
		return o, fmt.Errorf("loadgen: -service %q: want redis or http", o.service)
	case o.addr == "":
		return o, errors.New("loadgen: -addr is required")
	case o.ratePerSec < 0 || o.conns < 1 || o.duration <= 0 || o.warmup < 0 || o.keyspace < 1:
		return o, fmt.Errorf("loadgen: -rate %g, -conns %d, -duration %v, -warmup %v, -keyspace %d: out of range",
			o.ratePerSec, o.conns, o.duration, o.warmup, o.keyspace)
	}
	return o, nil
}

func (o loadgenOptions) doers() ([]doer, func(), error) {
	var ds []doer
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}
	for range o.conns {
		switch o.service {
		case "redis":
			c, err := dialRESP(o.addr)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, c)
			ds = append(ds, &redisDoer{conn: c, keyspace: o.keyspace, value: make([]byte, o.valueBytes)})
		case "http":
			ds = append(ds, newHTTPDoer(o.addr))
		}
	}
	return ds, closeAll, nil
}

// runLoadgen runs one load generator and writes to out: "start <unix ns>"
// when the measured window begins, "end <unix ns>" when it ends (the
// driver reads its cgroup counters at these two lines), then the result as
// one JSON line.
func runLoadgen(ctx context.Context, o loadgenOptions, out io.Writer) error {
	ds, closeAll, err := o.doers()
	if err != nil {
		return err
	}
	defer closeAll()
	clk := realClock{}
	start := clk.Now().Add(10 * time.Millisecond)
	from, end := start.Add(o.warmup), start.Add(o.warmup+o.duration)
	var marks sync.WaitGroup
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	marks.Go(func() {
		for _, m := range []struct {
			name string
			at   time.Time
		}{{"start", from}, {"end", end}} {
			clk.Sleep(mctx, time.Until(m.at))
			if mctx.Err() != nil {
				return
			}
			fmt.Fprintf(out, "%s %d\n", m.name, clk.Now().UnixNano())
		}
	})
	var res loadResult
	if o.ratePerSec == 0 {
		res = runClosedLoop(ctx, clk, ds, o.service, from, end)
	} else {
		outs := runOpenLoop(ctx, clk, ds, o.ratePerSec, start, from, end, 5*time.Second)
		res = summarize(o.service, o.ratePerSec, o.duration, outs)
	}
	marks.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// runClosedLoop keeps every connection busy until end and counts the
// answers after from: the service's capacity with this many connections.
func runClosedLoop(ctx context.Context, clk clock, ds []doer, service string, from, end time.Time) loadResult {
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w, d := range ds {
		wg.Go(func() {
			for i := int64(w); ctx.Err() == nil; i += int64(len(ds)) {
				now := clk.Now()
				if !now.Before(end) {
					return
				}
				err := d.do(ctx, i)
				if now.Before(from) {
					continue
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	window := end.Sub(from)
	r := loadResult{Service: service, Requests: int(ok.Load() + failed.Load()), Errors: int(failed.Load()),
		AchievedPerSec: float64(ok.Load()) / window.Seconds(), WindowSeconds: window.Seconds()}
	if s, _ := firstErr.Load().(string); s != "" {
		r.FirstError = s
	}
	return r
}
