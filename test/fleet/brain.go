package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/brain/auth"
)

// brainProc is the sluice-brain process under test, serving mutual TLS.
type brainProc struct {
	cmd *exec.Cmd
	url string
	// hc presents the admin operator certificate.
	hc *http.Client
}

func startBrain(bin, dir string, extra []string) (*brainProc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"--data-dir", filepath.Join(dir, "data"), "--listen", addr, "--log-level", "warn",
		"--tls-cert", auth.CertFile(dir, "brain"), "--tls-key", auth.KeyFile(dir, "brain"), "--client-ca", filepath.Join(dir, auth.CACertFile)}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start brain: %w", err)
	}
	b := &brainProc{cmd: cmd, url: "https://" + addr}
	b.hc, err = auth.HTTPClient(b.url, auth.ClientFiles{Cert: auth.CertFile(dir, "admin"), Key: auth.KeyFile(dir, "admin"), CA: filepath.Join(dir, auth.CACertFile)}, nil)
	if err != nil {
		b.stop()
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := b.hc.Get(b.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("brain not healthy after 2 minutes: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *brainProc) stop() {
	b.cmd.Process.Signal(os.Interrupt)
	b.cmd.Wait()
}

// usage is a process's CPU time and memory from /proc.
type usage struct {
	cpu      time.Duration
	rss, hwm int64
}

func procUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command (which may hold spaces): utime is the
	// 14th field, stime the 15th, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	if len(f) < 13 {
		return u, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.rss = kb << 10
		case "VmHWM":
			u.hwm = kb << 10
		}
	}
	return u, sc.Err()
}

// metrics is one scrape of the brain's /metrics.
type metrics map[string]*dto.MetricFamily

func (b *brainProc) scrape(ctx context.Context) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	return metrics(mfs), nil
}

// value sums a family's samples whose labels include the given pairs.
func (m metrics) value(name string, labels ...string) float64 {
	mf, ok := m[name]
	if !ok {
		return math.NaN()
	}
	var sum float64
next:
	for _, s := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		case s.Untyped != nil:
			sum += s.GetUntyped().GetValue()
		}
	}
	return sum
}

// histogramQuantile bounds quantile q of what a histogram observed
// between two scrapes: the upper bound of the first bucket holding it.
func histogramQuantile(before, after metrics, name string, q float64) (float64, uint64) {
	buckets := func(m metrics) map[float64]uint64 {
		out := map[float64]uint64{}
		if mf, ok := m[name]; ok && len(mf.GetMetric()) > 0 {
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				out[b.GetUpperBound()] = b.GetCumulativeCount()
			}
		}
		return out
	}
	b0, b1 := buckets(before), buckets(after)
	var bounds []float64
	for ub := range b1 {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	total := uint64(0)
	if mf, ok := after[name]; ok && len(mf.GetMetric()) > 0 {
		total = mf.GetMetric()[0].GetHistogram().GetSampleCount()
	}
	if mf, ok := before[name]; ok && len(mf.GetMetric()) > 0 {
		total -= mf.GetMetric()[0].GetHistogram().GetSampleCount()
	}
	if total == 0 {
		return math.NaN(), 0
	}
	for _, ub := range bounds {
		if float64(b1[ub]-b0[ub]) >= q*float64(total) {
			return ub, total
		}
	}
	return math.Inf(1), total
}
