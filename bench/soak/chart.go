package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// line is one series of a chart: a value per sample.
type line struct {
	name string
	y    []float64
}

// charts draws the report's series over time to prefix-rss.png,
// -goroutines.png, -files.png, -streams.png, -cpu.png and -load.png.
func (r *Report) charts(prefix string) error {
	if dir := filepath.Dir(prefix); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	of := func(f func(Sample) float64) []float64 {
		v := make([]float64, len(r.Samples))
		for i, s := range r.Samples {
			v[i] = f(s)
		}
		return v
	}
	x := of(func(s Sample) float64 { return s.At / 60 })
	title := fmt.Sprintf("%.0f calls/s of %s", r.Rate, r.Tool)
	var errs []error
	draw1 := func(name, what, unit string, lines ...line) {
		p, err := timeChart(what+" — "+title, unit, x, lines, false)
		if err == nil {
			err = save(p, prefix+"-"+name+".png", 7.5*vg.Inch, 3.6*vg.Inch)
		}
		errs = append(errs, err)
	}
	draw1("rss", "server memory", "MiB",
		line{"RSS", of(func(s Sample) float64 { return mib(s.RSS) })},
		line{"Go heap in use", of(func(s Sample) float64 { return mib(s.HeapInuse) })})
	draw1("goroutines", "server goroutines", "count",
		line{"goroutines", of(func(s Sample) float64 { return float64(s.Goroutines) })},
		line{"open event streams", of(func(s Sample) float64 { return float64(s.EventStreams) })})
	draw1("files", "server open files", "file descriptors",
		line{"open files", of(func(s Sample) float64 { return float64(s.OpenFiles) })})
	draw1("streams", "JetStream streams and buckets", "MiB", r.streamLines()...)
	draw1("cpu", "CPU of the shared machine", "cores",
		line{"server", of(func(s Sample) float64 { return s.CPUCores })},
		line{"load driver", of(func(s Sample) float64 { return s.DriverCores })},
		line{"whole machine: the rest is other work", of(func(s Sample) float64 { return s.MachineCores })})
	ok, err := timeChart("calls answered — "+title, "calls/s", x, []line{{"ok/s", of(func(s Sample) float64 { return s.OKPerSecond })},
		{"refused/s", of(func(s Sample) float64 { return float64(s.Calls[classRefused]) / r.Load.IntervalS })}}, false)
	if err == nil {
		var lat *plot.Plot
		lat, err = timeChart("", "ms (log scale)", x, []line{{"p99 latency of the interval's calls, from when due", of(func(s Sample) float64 { return s.P99MS })}}, true)
		if err == nil {
			err = saveStacked(prefix+"-load.png", 7.5*vg.Inch, 5*vg.Inch, ok, lat)
		}
	}
	errs = append(errs, err)
	return errors.Join(errs...)
}

// streamLines are the streams' sizes in MiB, the request partitions
// summed as one line; each named with its limit.
func (r *Report) streamLines() []line {
	var lines []line
	index := map[string]int{}
	for i, s := range r.Samples {
		for _, st := range s.Streams {
			name := st.Name
			if strings.HasPrefix(name, "MCP_REQ_") {
				name = "MCP_REQ_*"
			}
			j, ok := index[name]
			if !ok {
				j = len(lines)
				index[name] = j
				lines = append(lines, line{name: name, y: make([]float64, len(r.Samples))})
			}
			lines[j].y[i] += float64(st.Bytes) / (1 << 20)
		}
	}
	// Name each line with its limit, from the last sample.
	if n := len(r.Samples); n > 0 {
		limits := map[string][]int64{}
		for _, st := range r.Samples[n-1].Streams {
			name := st.Name
			if strings.HasPrefix(name, "MCP_REQ_") {
				name = "MCP_REQ_*"
			}
			limits[name] = append(limits[name], st.MaxBytes)
		}
		for i := range lines {
			l := limits[lines[i].name]
			switch {
			case len(l) == 0 || l[0] <= 0:
				lines[i].name += " (no byte limit)"
			case len(l) > 1:
				lines[i].name += fmt.Sprintf(" (%d, %s limit each)", len(l), fmtBytes(float64(l[0])))
			default:
				lines[i].name += fmt.Sprintf(" (%s limit)", fmtBytes(float64(l[0])))
			}
		}
	}
	return lines
}

// timeChart plots lines against x (minutes), with dashed marks where the
// middle and the last third of the samples start: the two parts the
// boundedness decision compares. With logScale the Y axis is logarithmic
// (values below the lowest positive one drawn at it).
func timeChart(title, unit string, x []float64, lines []line, logScale bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "minutes into the open loop"
	p.Y.Label.Text = unit
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(4)
	lo, hi := math.Inf(1), 0.0
	for _, l := range lines {
		for _, y := range l.y {
			if y > 0 {
				lo, hi = min(lo, y), max(hi, y)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 1
	}
	p.X.Min, p.Y.Min, p.Y.Max = 0, 0, hi*1.25 // room for the legend
	if logScale {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, ticks125{}
		p.Y.Min, p.Y.Max = lo/1.5, hi*4
	}
	for i, l := range lines {
		xys := make(plotter.XYs, len(x))
		for j := range x {
			xys[j] = plotter.XY{X: x[j], Y: l.y[j]}
			if logScale {
				xys[j].Y = max(xys[j].Y, lo)
			}
		}
		pl, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("chart %q: %w", title, err)
		}
		pl.Color = plotutil.Color(i)
		pl.Width = vg.Points(1.5)
		p.Add(pl)
		p.Legend.Add(l.name, pl)
	}
	if n := len(x); n >= minSamples {
		for _, at := range []float64{x[n/3], x[2*n/3]} {
			mark, err := plotter.NewLine(plotter.XYs{{X: at, Y: p.Y.Min}, {X: at, Y: p.Y.Max}})
			if err != nil {
				return nil, err
			}
			mark.Color = color.Gray{Y: 150}
			mark.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(mark)
		}
	}
	return p, nil
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

// ticks125 mark a log axis at 1, 2 and 5 times powers of ten.
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

// save writes p to path as a PNG.
func save(p *plot.Plot, path string, w, h vg.Length) error {
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return nil
}

// saveStacked writes plots one above the other to path as a PNG.
func saveStacked(path string, w, h vg.Length, plots ...*plot.Plot) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Points(6)}
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return f.Close()
}
