package bench

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// percentile names a latency percentile of a Result.
type percentile struct {
	name string
	of   func(*Result) time.Duration
}

// percentiles are the ones charted.
func percentiles() []percentile {
	return []percentile{
		{"p50", func(r *Result) time.Duration { return r.P50 }},
		{"p90", func(r *Result) time.Duration { return r.P90 }},
		{"p99", func(r *Result) time.Duration { return r.P99 }},
		{"p99.9", func(r *Result) time.Duration { return r.P999 }},
	}
}

// minChartMS is the floor of the log-scale axis: 1µs.
const minChartMS = 0.001

// Chart draws latency percentiles (p50, p90, p99, p99.9; milliseconds on a
// log scale) against offered load (calls/s), one point per result, as for a
// sweep of rates, and saves it to path (PNG, SVG or PDF by extension).
// Results of several targets (different Config.Label) get one set of lines
// each. Results without a successful call are left out.
func Chart(path string, results []*Result) error {
	byLabel := map[string][]*Result{}
	var labels []string
	for _, r := range results {
		if r == nil || r.OK == 0 {
			continue
		}
		if _, ok := byLabel[r.Config.Label]; !ok {
			labels = append(labels, r.Config.Label)
		}
		byLabel[r.Config.Label] = append(byLabel[r.Config.Label], r)
	}
	if len(labels) == 0 {
		return errors.New("bench: chart: no result with a successful call")
	}
	p := plot.New()
	p.Title.Text = "Latency against offered load"
	if len(labels) == 1 {
		p.Title.Text += " — " + labels[0]
	}
	p.X.Label.Text = "offered load (calls/s)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.X.Tick.Marker = plainTicks{}
	legendTopLeft(p)
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	series := 0
	for li, label := range labels {
		rs := byLabel[label]
		slices.SortFunc(rs, func(a, b *Result) int { return cmp.Compare(a.Offered, b.Offered) })
		for _, pc := range percentiles() {
			xys := make(plotter.XYs, len(rs))
			for i, r := range rs {
				y := max(ms(pc.of(r)), minChartMS)
				xys[i] = plotter.XY{X: r.Offered, Y: y}
				lo, hi = min(lo, y), max(hi, y)
			}
			name := pc.name
			if len(labels) > 1 {
				name = label + " " + pc.name
			}
			if err := addLinePoints(p, name, xys, series, li); err != nil {
				return err
			}
			series++
		}
	}
	logY(p, lo, hi)
	if p.X.Min == p.X.Max { // one rate: give the point some room
		p.X.Min, p.X.Max = p.X.Min*0.9, p.X.Max*1.1+1
	} else {
		pad := (p.X.Max - p.X.Min) * 0.05
		p.X.Min, p.X.Max = max(0, p.X.Min-pad), p.X.Max+pad
	}
	if err := p.Save(9*vg.Inch, 5.5*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: saving chart: %w", err)
	}
	return nil
}

// CompareChart draws, for a side-by-side comparison of targets, each
// result's latency percentiles (p50, p90, p99, p99.9 on the X axis;
// milliseconds on a log scale), one line per result named by its
// Config.Label and throughput, and saves it to path.
func CompareChart(path string, results []*Result) error {
	p := plot.New()
	p.Title.Text = "Latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	legendTopLeft(p)
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	pcs := percentiles()
	n := 0
	for i, r := range results {
		if r == nil || r.OK == 0 {
			continue
		}
		xys := make(plotter.XYs, len(pcs))
		for j, pc := range pcs {
			y := max(ms(pc.of(r)), minChartMS)
			xys[j] = plotter.XY{X: float64(j), Y: y}
			lo, hi = min(lo, y), max(hi, y)
		}
		name := fmt.Sprintf("%s (%s calls/s)", r.Config.Label, fmtFloat(r.Throughput))
		if err := addLinePoints(p, name, xys, i, 0); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("bench: chart: no result with a successful call")
	}
	names := make([]string, len(pcs))
	for i, pc := range pcs {
		names[i] = pc.name
	}
	p.NominalX(names...)
	logY(p, lo, hi)
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: saving chart: %w", err)
	}
	return nil
}

// addLinePoints adds a line with point marks in the color of series i and
// the dash style of group g, with a legend entry.
func addLinePoints(p *plot.Plot, name string, xys plotter.XYs, i, g int) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	l.Color = plotutil.Color(i)
	l.Width = vg.Points(1.5)
	l.Dashes = plotutil.Dashes(g)
	s.Color = l.Color
	s.Shape = plotutil.Shape(i)
	s.Radius = vg.Points(3)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// legendTopLeft puts p's legend in the top left corner, clear of the axis.
func legendTopLeft(p *plot.Plot) {
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(4)
	p.Legend.Padding = vg.Points(2)
}

// plainTicks are gonum's default ticks labelled without trailing zeros.
type plainTicks struct{}

// Ticks returns the ticks between lo and hi.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// logY makes p's Y axis logarithmic, spanning lo..hi with some room.
func logY(p *plot.Plot, lo, hi float64) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = ticks125{}
	p.Y.Min = max(lo/1.5, minChartMS/2)
	p.Y.Max = hi * 1.5
}

// ticks125 marks a log axis at 1, 2 and 5 times powers of ten, labelling
// every one of them while there are few, else only the powers of ten.
type ticks125 struct{}

// Ticks returns the ticks between lo and hi.
func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for _, m := range []float64{1, 2, 5} {
			v := m * base
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	labelAll := len(ts) <= 12
	for i := range ts {
		if labelAll || isPow10(ts[i].Value) {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', -1, 64)
		}
	}
	if len(ts) < 2 { // a narrow range: plain ticks at its ends
		ts = []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', 3, 64)}, {Value: hi, Label: strconv.FormatFloat(hi, 'g', 3, 64)}}
	}
	return ts
}

// isPow10 reports whether v is a power of ten.
func isPow10(v float64) bool {
	e := math.Log10(v)
	return math.Abs(e-math.Round(e)) < 1e-9
}
