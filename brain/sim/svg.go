package sim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// The pictures are hand-written SVG: a handful of elements, no
// dependencies, readable in any browser.

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

func esc(s string) string {
	var b bytes.Buffer
	// EscapeText cannot fail writing to a bytes.Buffer.
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// WriteCurvesSVG draws, for dimension dim, each run's allocation (placed
// demand) against arrived demand, both as shares of capacity, with the
// ideal (everything that arrived is placed) as a dashed diagonal.
func WriteCurvesSVG(w io.Writer, runs []*Run, dim, title string) error {
	const width, height, left, right, top, bottom = 760, 480, 70, 190, 40, 60
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	xmax := 0.0
	for _, r := range runs {
		for _, p := range r.Curve {
			xmax = math.Max(xmax, p.Arrived[dim])
		}
	}
	// Round the x range up to a whole 10%, at least 100%.
	xmax = math.Max(1, math.Ceil(xmax*10)/10)
	x := func(v float64) float64 { return float64(left) + v/xmax*pw }
	y := func(v float64) float64 { return float64(top) + (1-v)*ph }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s</text>`+"\n", left, esc(title))
	b.WriteString(`<g class="grid" stroke="#ddd">` + "\n")
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x(0), y(v), x(xmax), y(v))
	}
	xsteps := int(math.Round(xmax * 10))
	for i := 0; i <= xsteps; i++ {
		v := float64(i) / 10
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x(v), y(0), x(v), y(1))
	}
	b.WriteString("</g>\n")
	b.WriteString(`<g class="ticks" fill="#333">` + "\n")
	for i := 0; i <= 10; i += 2 {
		v := float64(i) / 10
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%d%%</text>`+"\n", x(0)-6, y(v)+4, i*10)
	}
	for i := 0; i <= xsteps; i += max(1, xsteps/5) {
		v := float64(i) / 10
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d%%</text>`+"\n", x(v), y(0)+18, i*10)
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">arrived %s demand (share of capacity)</text>`+"\n", x(xmax/2), height-14, esc(dim))
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s allocation rate</text>`+"\n", y(0.5), esc(dim))
	// Ideal: everything that arrives is placed, until the cluster is full.
	fmt.Fprintf(&b, `<polyline class="ideal" fill="none" points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" stroke="#999" stroke-dasharray="5,4"/>`+"\n", x(0), y(0), x(1), y(1), x(xmax), y(1))
	for i, r := range runs {
		color := palette[i%len(palette)]
		var pts bytes.Buffer
		for k, p := range r.Curve {
			if k > 0 {
				pts.WriteByte(' ')
			}
			fmt.Fprintf(&pts, "%.1f,%.1f", x(p.Arrived[dim]), y(math.Min(1, p.Allocated[dim])))
		}
		fmt.Fprintf(&b, `<polyline class="run" fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`+"\n", color, pts.String(), esc(runLabel(r)))
		ly := top + 10 + i*18
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", width-right+15, ly, width-right+35, ly, color)
		fmt.Fprintf(&b, `<text class="legend" x="%d" y="%d">%s</text>`+"\n", width-right+40, ly+4, esc(runLabel(r)))
	}
	b.WriteString("</svg>\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write curves svg: %w", err)
	}
	return nil
}

func runLabel(r *Run) string { return fmt.Sprintf("%s (seed %d)", r.Strategy, r.Seed) }

// WriteHeatmapSVG draws one cell per host, in snapshot order, coloured by
// the host's utilisation of dim at the end of the run (white = idle, dark
// red = full); hovering a cell names the host.
func WriteHeatmapSVG(w io.Writer, run *Run, dim, title string) error {
	const cell, left, top = 10, 20, 50
	n := len(run.HostUtil)
	cols := min(max(n, 1), 64)
	rows := (n + cols - 1) / cols
	width := left*2 + cols*cell + 120
	height := top + rows*cell + 30
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s</text>`+"\n", left, esc(title))
	b.WriteString(`<g class="hosts" stroke="#eee" stroke-width="0.5">` + "\n")
	for i, h := range run.HostUtil {
		u := h.Util[dim]
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s %.1f%%</title></rect>`+"\n",
			left+(i%cols)*cell, top+(i/cols)*cell, cell, cell, heat(u), esc(h.Host), esc(dim), u*100)
	}
	b.WriteString("</g>\n")
	lx := left + cols*cell + 20
	b.WriteString(`<g class="legend">` + "\n")
	for i := 0; i <= 10; i++ {
		v := float64(10-i) / 10
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="16" height="12" fill="%s"/>`+"\n", lx, top+i*12, heat(v))
		if i%5 == 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%d">%d%%</text>`+"\n", lx+22, top+i*12+10, int(v*100))
		}
	}
	b.WriteString("</g>\n</svg>\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write heatmap svg: %w", err)
	}
	return nil
}

// heat maps [0,1] from white through orange to dark red.
func heat(u float64) string {
	u = math.Max(0, math.Min(1, u))
	type rgb struct{ r, g, b float64 }
	stops := []rgb{{255, 255, 255}, {253, 174, 97}, {165, 0, 38}}
	seg := u * 2
	i := min(int(seg), 1)
	f := seg - float64(i)
	a, c := stops[i], stops[i+1]
	return fmt.Sprintf("#%02x%02x%02x", int(a.r+(c.r-a.r)*f), int(a.g+(c.g-a.g)*f), int(a.b+(c.b-a.b)*f))
}

// WriteBandSVG draws, for dimension dim, the spread of host utilisation at
// every curve point over the hosts that run anything: min to max as a
// band, the median as a line, at the start (grey) and at the end of the
// run (colour). Runs without curves have no band; the picture says so.
func WriteBandSVG(w io.Writer, run *Run, dim, title string) error {
	const width, height, left, right, top, bottom = 860, 420, 70, 250, 40, 50
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	before, after := run.UtilBandBefore[dim], run.UtilBand[dim]
	n := max(len(before), len(after))
	x := func(i int) float64 { return float64(left) + float64(i)/float64(max(n-1, 1))*pw }
	y := func(v float64) float64 { return float64(top) + (1-math.Min(1.2, v)/1.2)*ph }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s</text>`+"\n", left, esc(title))
	b.WriteString(`<g class="grid" stroke="#ddd">` + "\n")
	for i := 0; i <= 12; i += 2 {
		v := float64(i) / 10
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`+"\n", left, y(v), width-right, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" stroke="none" fill="#333">%d%%</text>`+"\n", left-6, y(v)+4, i*10)
	}
	b.WriteString("</g>\n")
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no curves: nothing varies over the day</text>`+"\n", left+10, top+30)
	}
	for k, s := range []struct {
		name, color string
		band        []BandPoint
	}{{"start", "#999999", before}, {"end", palette[0], after}} {
		if len(s.band) == 0 {
			continue
		}
		var area, median bytes.Buffer
		for i, p := range s.band {
			fmt.Fprintf(&area, "%.1f,%.1f ", x(i), y(p.Max))
			fmt.Fprintf(&median, "%.1f,%.1f ", x(i), y(p.Median))
		}
		for i := len(s.band) - 1; i >= 0; i-- {
			fmt.Fprintf(&area, "%.1f,%.1f ", x(i), y(s.band[i].Min))
		}
		fmt.Fprintf(&b, `<polygon class="band-%s" points="%s" fill="%s" fill-opacity="0.25" stroke="none"/>`+"\n", s.name, strings.TrimSpace(area.String()), s.color)
		fmt.Fprintf(&b, `<polyline class="median-%s" points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", s.name, strings.TrimSpace(median.String()), s.color)
		ly := top + 10 + k*18
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="20" height="10" fill="%s" fill-opacity="0.4"/>`+"\n", width-right+15, ly-5, s.color)
		fmt.Fprintf(&b, `<text class="legend" x="%d" y="%d">%s: min-max, median</text>`+"\n", width-right+40, ly+4, s.name)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">curve point (time of day)</text>`+"\n", float64(left)+pw/2, height-14)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s utilisation of used hosts</text>`+"\n", float64(top)+ph/2, esc(dim))
	b.WriteString("</svg>\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write band svg: %w", err)
	}
	return nil
}

// WriteShapesSVG draws, per host shape, the hosts of that shape and how
// many run anything at the start and at the end of each run.
func WriteShapesSVG(w io.Writer, runs []*Run, title string) error {
	if len(runs) == 0 {
		return fmt.Errorf("write shapes svg: no runs")
	}
	shapes := runs[0].Shapes
	const left, top, barH, gap = 260, 40, 14, 12
	rowsPer := len(runs) + 2 // all hosts, start, each run's end
	height := top + len(shapes)*(rowsPer*barH+gap) + 40
	const width, pw = 900, 600
	most := 1
	for _, s := range shapes {
		most = max(most, s.Hosts)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="20" y="24" font-size="15">%s</text>`+"\n", esc(title))
	bar := func(y int, label string, v int, color string) {
		wd := float64(v) / float64(most) * pw
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, y+barH-3, esc(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y+1, wd, barH-2, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%d</text>`+"\n", float64(left)+wd+4, y+barH-3, v)
	}
	for k, s := range shapes {
		y := top + k*(rowsPer*barH+gap)
		bar(y, s.Shape+": hosts", s.Hosts, "#dddddd")
		bar(y+barH, "used at start", s.UsedBefore, "#999999")
		for i, r := range runs {
			used := 0
			if k < len(r.Shapes) {
				used = r.Shapes[k].UsedAfter
			}
			bar(y+(2+i)*barH, "used after "+runLabel(r), used, palette[i%len(palette)])
		}
	}
	b.WriteString("</svg>\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write shapes svg: %w", err)
	}
	return nil
}
