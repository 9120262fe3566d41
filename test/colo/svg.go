package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// condColors gives each condition one colour in every plot.
func condColor(k condition) string {
	return [...]string{"#444444", "#999999", "#d62728", "#ff7f0e", "#9467bd", "#2ca02c"}[k]
}

// svgDoc is a small SVG writer: the plots need lines, text and circles.
type svgDoc struct {
	b    strings.Builder
	w, h int
}

func newSVG(w, h int) *svgDoc {
	d := &svgDoc{w: w, h: h}
	fmt.Fprintf(&d.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&d.b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	return d
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, color string, width float64, dash bool) {
	da := ""
	if dash {
		da = ` stroke-dasharray="5,3"`
	}
	fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s/>`+"\n", x1, y1, x2, y2, color, width, da)
}

func (d *svgDoc) text(x, y float64, anchor, s string) {
	fmt.Fprintf(&d.b, `<text x="%.1f" y="%.1f" text-anchor="%s">%s</text>`+"\n", x, y, anchor, html.EscapeString(s))
}

func (d *svgDoc) circle(x, y, r float64, color string) {
	fmt.Fprintf(&d.b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`+"\n", x, y, r, color)
}

func (d *svgDoc) polyline(pts [][2]float64, color string, dash bool) {
	if len(pts) < 2 {
		return
	}
	var s []string
	for _, p := range pts {
		s = append(s, fmt.Sprintf("%.1f,%.1f", p[0], p[1]))
	}
	da := ""
	if dash {
		da = ` stroke-dasharray="5,3"`
	}
	fmt.Fprintf(&d.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"%s/>`+"\n", strings.Join(s, " "), color, da)
}

func (d *svgDoc) bytes() []byte { return []byte(d.b.String() + "</svg>\n") }

// legend draws one entry per condition from x, y down.
func (d *svgDoc) legend(x, y float64, conds []condition, extra ...string) {
	for i, k := range conds {
		yy := y + float64(i)*14
		d.line(x, yy-4, x+18, yy-4, condColor(k), 3, false)
		d.text(x+22, yy, "start", k.String())
	}
	for i, e := range extra {
		d.text(x, y+float64(len(conds)+i)*14, "start", e)
	}
}

func allConditions() []condition {
	var out []condition
	for k := range numConditions {
		out = append(out, k)
	}
	return out
}

// latencyPlot: per load level, per condition, p99 median with its IQR as
// a bar, and p50 and p99.9 medians as small dots; log scale.
func (r report) latencyPlot(s *service) []byte {
	const left, top, plotH, groupW = 60.0, 30.0, 300.0, 150.0
	d := newSVG(int(left+groupW*float64(len(s.levels)))+200, int(top+plotH+50))
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, lvl := range s.levels {
		for k := range numConditions {
			g, _ := r.group(s.name, lvl, k).shown()
			for _, c := range g.kept {
				if c.load.P50 > 0 {
					lo, hi = math.Min(lo, ms(c.load.P50)), math.Max(hi, ms(c.load.P999))
				}
			}
		}
	}
	if math.IsInf(lo, 0) {
		return d.bytes()
	}
	llo, lhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if lhi <= llo {
		lhi = llo + 1
	}
	y := func(v float64) float64 { return top + plotH - plotH*(math.Log10(v)-llo)/(lhi-llo) }
	d.text(left, 16, "start", s.name+": latency from scheduled send (ms, log scale): bar = p99 IQR, big dot = p99 median, small dots = p50 and p99.9 medians; * = every round discarded (driver starved), shown anyway")
	for e := llo; e <= lhi; e++ {
		v := math.Pow(10, e)
		d.line(left, y(v), left+groupW*float64(len(s.levels)), y(v), "#dddddd", 1, false)
		d.text(left-4, y(v)+4, "end", fmt.Sprintf("%g", v))
	}
	for gi, lvl := range s.levels {
		x0 := left + groupW*float64(gi)
		d.text(x0+groupW/2, top+plotH+16, "middle", fmt.Sprintf("%d%% of capacity", lvl))
		for k := range numConditions {
			g, fromDiscarded := r.group(s.name, lvl, k).shown()
			p99 := g.figure(figP99)
			if len(p99) == 0 {
				continue
			}
			x := x0 + 15 + float64(k)*20
			if fromDiscarded {
				d.text(x, top+plotH+30, "middle", "*")
			}
			q1, m, q3 := quartiles(p99)
			d.line(x, y(q1), x, y(q3), condColor(k), 6, false)
			d.circle(x, y(m), 4, condColor(k))
			d.circle(x, y(med(g.figure(figP50))), 2, condColor(k))
			d.circle(x, y(med(g.figure(figP999))), 2, condColor(k))
		}
	}
	d.legend(left+groupW*float64(len(s.levels))+10, top+10, allConditions())
	return d.bytes()
}

// sharePlot: per load level, the offline share second by second in the
// first kept round of each condition with burners, and the offline cap
// (CFS quota as % of the host's CPUs, dashed) where one was set.
func (r report) sharePlot(s *service) []byte {
	const left, top, panelH, plotW = 60.0, 30.0, 160.0, 600.0
	d := newSVG(int(left+plotW)+200, int(top+(panelH+40)*float64(len(s.levels))))
	d.text(left, 16, "start", s.name+": offline share of the CPU left idle, per second (solid), and the offline cap, % of host CPUs (dashed); first kept round (a discarded one if none was kept)")
	burners := []condition{condNoIsolation, condCPUIdle, condKoord, condSluice}
	span := r.o.duration.Seconds()
	for pi, lvl := range s.levels {
		y0 := top + float64(pi)*(panelH+40)
		y := func(pct float64) float64 { return y0 + panelH - panelH*math.Min(math.Max(pct, 0), 120)/120 }
		x := func(sec float64) float64 { return left + plotW*sec/span }
		for _, pct := range []float64{0, 50, 100} {
			d.line(left, y(pct), left+plotW, y(pct), "#dddddd", 1, false)
			d.text(left-4, y(pct)+4, "end", fmt.Sprintf("%.0f%%", pct))
		}
		d.text(left+plotW/2, y0+panelH+14, "middle", fmt.Sprintf("load %d%%: seconds into the measured window", lvl))
		for _, k := range burners {
			g, _ := r.group(s.name, lvl, k).shown()
			if len(g.kept) == 0 {
				continue
			}
			var share, capPts [][2]float64
			for _, sm := range g.kept[0].samples {
				if !math.IsNaN(sm.share) {
					share = append(share, [2]float64{x(sm.offsetSec), y(100 * sm.share)})
				}
				if sm.capCores >= 0 {
					capPts = append(capPts, [2]float64{x(sm.offsetSec), y(100 * sm.capCores / float64(r.cpus))})
				}
			}
			d.polyline(share, condColor(k), false)
			d.polyline(capPts, condColor(k), true)
		}
	}
	d.legend(left+plotW+10, top+10, burners, "dashed: offline cap")
	return d.bytes()
}

// writePlots writes both plots per service into dir and returns the paths.
func (r report) writePlots(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	var files []string
	for _, s := range r.services {
		for _, f := range []struct {
			name string
			body []byte
		}{{"latency-" + s.name + ".svg", r.latencyPlot(s)}, {"share-" + s.name + ".svg", r.sharePlot(s)}} {
			p := filepath.Join(dir, f.name)
			if err := os.WriteFile(p, f.body, 0o644); err != nil {
				return files, fmt.Errorf("plots: %w", err)
			}
			files = append(files, p)
		}
	}
	return files, nil
}
