package sim

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
)

// The band picture has a band and a median per state (start, end), one
// point per curve point each, at heights that match the band's numbers.
func TestBandAndShapesSVG(t *testing.T) {
	g, err := GenerateCluster(ClusterConfig{Seed: 2, Hosts: 30, Apps: 20, Containers: 120, Rules: 20, CurvePoints: 12, Existing: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	w, err := FromGeneric(g)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Evaluate(context.Background(), w, []place.Strategy{place.StrategyBestFit, place.StrategySpread}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run := rep.Runs[0]
	if len(run.UtilBand[place.DimCPU]) != 12 || len(run.UtilBandBefore[place.DimCPU]) != 12 {
		t.Fatalf("bands of %d and %d points, want 12", len(run.UtilBand[place.DimCPU]), len(run.UtilBandBefore[place.DimCPU]))
	}
	for i, p := range run.UtilBand[place.DimCPU] {
		if !(p.Min <= p.Median && p.Median <= p.Max && p.Max <= 1) {
			t.Fatalf("point %d: %+v is not min <= median <= max <= 1", i, p)
		}
	}
	var b bytes.Buffer
	if err := WriteBandSVG(&b, run, place.DimCPU, "band"); err != nil {
		t.Fatal(err)
	}
	elems := map[string]string{}
	for _, e := range svgElements(t, b.Bytes()) {
		elems[e.class] = e.points
	}
	for _, class := range []string{"band-start", "band-end"} {
		if pts := strings.Fields(elems[class]); len(pts) != 24 {
			t.Errorf("%s has %d points, want 24 (max there, min back)", class, len(pts))
		}
	}
	for _, class := range []string{"median-start", "median-end"} {
		if pts := strings.Fields(elems[class]); len(pts) != 12 {
			t.Errorf("%s has %d points, want 12", class, len(pts))
		}
	}
	b.Reset()
	if err := WriteShapesSVG(&b, rep.Runs, "shapes"); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, sh := range run.Shapes {
		if !strings.Contains(s, sh.Shape+": hosts") {
			t.Errorf("shape %q missing", sh.Shape)
		}
	}
	if len(run.Shapes) != 2 || run.Shapes[0].Hosts+run.Shapes[1].Hosts != 30 || strings.Count(s, "used after ") != 2*len(run.Shapes) {
		t.Errorf("shapes %+v; picture:\n%s", run.Shapes, s)
	}
}

// svgElement is one element of a picture: its name, class and points.
type svgElement struct{ name, class, points string }

// svgElements lists the picture's elements in order.
func svgElements(t *testing.T, data []byte) []svgElement {
	t.Helper()
	var out []svgElement
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		e := svgElement{name: el.Name.Local}
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "class":
				e.class = a.Value
			case "points":
				e.points = a.Value
			}
		}
		out = append(out, e)
	}
	return out
}
