package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeChart draws a panel per setting, side by side on one Y scale: each
// target's latency by percentile (p50, p90, p99, p99.9; milliseconds, log
// scale), a line through the medians over the rounds with a bar from the
// minimum to the maximum, a colour per target. It saves a PNG to path.
func writeChart(path string, rep *report) error {
	type pct struct {
		name string
		of   func(row) spread
	}
	pcts := []pct{
		{"p50", func(r row) spread { return r.P50 }},
		{"p90", func(r row) spread { return r.P90 }},
		{"p99", func(r row) spread { return r.P99 }},
		{"p99.9", func(r row) spread { return r.P999 }},
	}
	names := make([]string, len(pcts))
	for i, p := range pcts {
		names[i] = p.name
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var panels []*plot.Plot
	for si, s := range rep.Settings {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("(%c) %s", 'a'+si, chartTitle(s, rep.opts.gogc))
		p.X.Label.Text = fmt.Sprintf("percentile (median over %s; bars: min to max)", plural(rep.roundsRun(), "round"))
		p.Y.Label.Text = "latency (ms, log scale)"
		// Latency rises to the right: the bottom right corner is free.
		p.Legend.Top, p.Legend.Left = false, false
		p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), vg.Points(6)
		p.Legend.Padding = vg.Points(2)
		p.Add(plotter.NewGrid())
		lines := 0
		for _, r := range s.Rows {
			if len(r.Throughput.Values) == 0 || r.P50.Median == 0 {
				continue
			}
			ti := slices.Index(rep.opts.targets, r.Target)
			// Spread the targets a little along X so that their bars do
			// not hide one another.
			dx := (float64(ti) - float64(len(rep.opts.targets)-1)/2) * 0.06
			pts := medianRange{}
			for j, pc := range pcts {
				sp := pc.of(r)
				y := max(sp.Median, 0.001)
				pts = append(pts, medianPoint{x: float64(j) + dx, y: y, lo: max(sp.Min, 0.001), hi: max(sp.Max, 0.001)})
				lo, hi = min(lo, max(sp.Min, 0.001)), max(hi, sp.Max)
			}
			l, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return fmt.Errorf("chart: %w", err)
			}
			l.Color = plotutil.Color(ti)
			l.Width = vg.Points(1.5)
			sc.Color, sc.Shape, sc.Radius = l.Color, plotutil.Shape(ti), vg.Points(3)
			bars, err := plotter.NewYErrorBars(pts)
			if err != nil {
				return fmt.Errorf("chart: %w", err)
			}
			bars.Color, bars.Width = l.Color, vg.Points(1)
			p.Add(l, sc, bars)
			p.Legend.Add(fmt.Sprintf("%s GOGC=%s: %s calls/s", r.Target, formatGOGC(r.GOGC), r.Throughput.format(fmtRate)), l, sc)
			lines++
		}
		if lines == 0 {
			continue
		}
		p.NominalX(names...)
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return errors.New("chart: no run with a successful call")
	}
	for _, p := range panels {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = ticks125{}
		// Room below the lowest point for the legend.
		p.Y.Min, p.Y.Max = lo/3.5, hi*1.5
		p.X.Min, p.X.Max = -0.5, float64(len(pcts))-0.5
	}
	w, h := vg.Length(len(panels))*6.5*vg.Inch, 5*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Points(12), PadTop: vg.Points(4), PadBottom: vg.Points(4),
		PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(filepath.Clean(path))
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// chartTitle is a setting's panel title.
func chartTitle(s settingSummary, common int) string {
	if s.Name == settingShipped {
		return "each server at its shipped GOGC"
	}
	return "every server at GOGC=" + formatGOGC(common)
}

// medianPoint is a median with the minimum and maximum around it.
type medianPoint struct{ x, y, lo, hi float64 }

// medianRange are points for a line through the medians (plotter.XYer)
// and bars from the minimum to the maximum (plotter.YErrorer).
type medianRange []medianPoint

func (m medianRange) Len() int                        { return len(m) }
func (m medianRange) XY(i int) (float64, float64)     { return m[i].x, m[i].y }
func (m medianRange) YError(i int) (float64, float64) { return m[i].y - m[i].lo, m[i].hi - m[i].y }

// ticks125 marks a log axis at 1, 2 and 5 times powers of ten.
type ticks125 struct{}

// Ticks returns the ticks between lo and hi.
func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			if v := m * math.Pow(10, e); v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}
