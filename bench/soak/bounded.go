package main

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// tolerances say how much a series may grow from the middle third of the
// run to the last third and still count as bounded: by rel of its middle
// level or by the series' absolute margin, whichever is larger; and how
// many goroutines and open files the server may hold once the load is
// over beyond what it held before.
type tolerances struct {
	rel         float64 // e.g. 0.15
	rssAbs      float64 // bytes
	goroutAbs   float64 // goroutines
	filesAbs    float64 // file descriptors (open files get no relative allowance)
	streamsAbs  float64 // bytes, for streams without a byte limit
	goroutAfter float64 // goroutines left after the load
	filesAfter  float64 // open files left after the load
}

func defaultTolerances(rel float64) tolerances {
	return tolerances{rel: rel, rssAbs: 16 << 20, goroutAbs: 64, filesAbs: 32, streamsAbs: 1 << 20, goroutAfter: 16, filesAfter: 8}
}

// Verdict is the boundedness decision about one series.
type Verdict struct {
	Series string `json:"series"`
	// Middle and Last are the series' level (Stat: its median, or its
	// lower quartile, the level it comes back to between bursts) over the
	// middle and the last third of the samples, or before and after the
	// load; Allowed is the growth allowed between them.
	Stat    string  `json:"stat"`
	Middle  float64 `json:"middle"`
	Last    float64 `json:"last"`
	Allowed float64 `json:"allowed"`
	Bounded bool    `json:"bounded"`
	// Note says why, for a stream judged by its limits.
	Note string `json:"note,omitempty"`
}

// minSamples is the fewest samples a decision is made on: two a third.
const minSamples = 6

// decide judges every series of the run's samples: RSS (its median) and
// goroutines must not grow from the middle third to the last by more
// than the tolerance, open files not beyond a margin. Goroutines and open
// files follow the connections and calls open, which pile up whenever the
// server falls behind (on a shared machine, whenever other work takes its
// CPU), so they are judged on the samples at which it kept up with rate
// (see keptUp), when each third has two, and by their lower quartile, the
// level they come back to. A stream that drops its oldest messages when full is
// bounded by its limits (checked to hold), one that refuses new messages
// when full (a KV bucket) must not be on course to fill before its MaxAge
// frees room, and one without a byte limit is judged like RSS with the
// streams' margin. With after sampled (its RSS set), the goroutines and
// open files the server holds once every client has left must be back
// within a small margin of before.
func decide(samples []Sample, rate float64, before, after Sample, tol tolerances) ([]Verdict, error) {
	if len(samples) < minSamples {
		return nil, fmt.Errorf("%d samples, too few to judge (want %d): run longer or sample more often", len(samples), minSamples)
	}
	at := make([]float64, len(samples))
	for i, s := range samples {
		at[i] = s.At
	}
	series := func(f func(Sample) float64) []float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		return v
	}
	verdicts := []Verdict{
		growth("rss", statMedian, series(func(s Sample) float64 { return float64(s.RSS) }), tol.rel, tol.rssAbs),
		steadyGrowth("goroutines", samples, rate, func(s Sample) float64 { return float64(s.Goroutines) }, tol.rel, tol.goroutAbs),
		steadyGrowth("open files", samples, rate, func(s Sample) float64 { return float64(s.OpenFiles) }, 0, tol.filesAbs),
	}
	if after.RSS > 0 {
		for _, c := range []struct {
			name          string
			before, after int
			allowed       float64
		}{
			{"goroutines after the load", before.Goroutines, after.Goroutines, tol.goroutAfter},
			{"open files after the load", before.OpenFiles, after.OpenFiles, tol.filesAfter},
		} {
			grew := float64(c.after - c.before)
			verdicts = append(verdicts, Verdict{Series: c.name, Stat: "before -> after", Middle: float64(c.before),
				Last: float64(c.after), Allowed: c.allowed, Bounded: grew <= c.allowed})
		}
	}
	for _, name := range streamNames(samples) {
		var limits StreamSample
		bytes := series(func(s Sample) float64 {
			for _, st := range s.Streams {
				if st.Name == name {
					limits = st
					return float64(st.Bytes)
				}
			}
			return 0
		})
		verdicts = append(verdicts, streamVerdict("stream "+name, at, bytes, limits, tol))
	}
	return verdicts, nil
}

// streamNames are the names of every stream seen, sorted.
func streamNames(samples []Sample) []string {
	var names []string
	for _, s := range samples {
		for _, st := range s.Streams {
			if !slices.Contains(names, st.Name) {
				names = append(names, st.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// The statistics a third of a series is summed up by.
const (
	statMedian = "median"
	statFloor  = "lower quartile"
)

// thirds are the statistic stat of the middle and the last third of v,
// and the indexes where those thirds start.
func thirds(v []float64, stat string) (mid, last float64, i1, i2 int) {
	n := len(v)
	i1, i2 = n/3, 2*n/3
	q := 0.5
	if stat == statFloor {
		q = 0.25
	}
	return quantile(v[i1:i2], q), quantile(v[i2:], q), i1, i2
}

// growth judges a series that may grow from its middle third to its last
// (each summed up by stat) by rel of its middle level or abs, whichever is
// larger.
func growth(name, stat string, v []float64, rel, abs float64) Verdict {
	mid, last, _, _ := thirds(v, stat)
	allowed := max(rel*mid, abs)
	return Verdict{Series: name, Stat: stat, Middle: mid, Last: last, Allowed: allowed, Bounded: last-mid <= allowed}
}

// keptUp reports whether the server kept up with the offered rate over a
// sample's interval: at least 95% of the rate answered, at most 1% of the
// calls refused, none lost.
func keptUp(s Sample, rate float64) bool {
	var calls int64
	for _, n := range s.Calls {
		calls += n
	}
	return s.Calls[classLost] == 0 && s.Calls[classRefused]*100 <= calls && s.OKPerSecond >= 0.95*rate
}

// steadyGrowth is growth by the lower quartile of f over the samples of
// each third at which the server kept up with rate, or over every sample
// when either third has fewer than two of those.
func steadyGrowth(name string, samples []Sample, rate float64, f func(Sample) float64, rel, abs float64) Verdict {
	n := len(samples)
	i1, i2 := n/3, 2*n/3
	var mid, last []float64
	for i, s := range samples[i1:] {
		if keptUp(s, rate) {
			if i1+i < i2 {
				mid = append(mid, f(s))
			} else {
				last = append(last, f(s))
			}
		}
	}
	if len(mid) < 2 || len(last) < 2 {
		all := make([]float64, n)
		for i, s := range samples {
			all[i] = f(s)
		}
		v := growth(name, statFloor, all, rel, abs)
		v.Note = fmt.Sprintf("over every sample: the server kept up in %d of the middle third's and %d of the last third's", len(mid), len(last))
		return v
	}
	m, l := quantile(mid, 0.25), quantile(last, 0.25)
	allowed := max(rel*m, abs)
	return Verdict{Series: name, Stat: statFloor, Middle: m, Last: l, Allowed: allowed, Bounded: l-m <= allowed,
		Note: fmt.Sprintf("over the %d and %d samples at which the server kept up", len(mid), len(last))}
}

// streamVerdict judges a stream's bytes (sampled at times at) against its
// limits (lim, its last state).
func streamVerdict(name string, at, bytes []float64, lim StreamSample, tol tolerances) Verdict {
	if lim.MaxBytes <= 0 {
		v := growth(name, statMedian, bytes, tol.rel, tol.streamsAbs)
		v.Note = "no byte limit"
		return v
	}
	mid, last, i1, i2 := thirds(bytes, statMedian)
	v := Verdict{Series: name, Stat: statMedian, Middle: mid, Last: last, Allowed: float64(lim.MaxBytes) - mid, Bounded: true}
	if peak := slices.Max(bytes); peak > float64(lim.MaxBytes) {
		v.Bounded, v.Note = false, fmt.Sprintf("%s over its limit of %s", fmtBytes(peak), fmtBytes(float64(lim.MaxBytes)))
		return v
	}
	// The growth rate between the middles of the two thirds.
	t1, t2 := quantile(at[i1:i2], 0.5), quantile(at[i2:], 0.5)
	rate := 0.0
	if t2 > t1 {
		rate = (last - mid) / (t2 - t1)
	}
	fill := "not growing"
	switch {
	case last >= 0.99*float64(lim.MaxBytes):
		fill = "full"
	case rate > 0:
		fill = fmt.Sprintf("%s/min, full in %s", fmtBytes(rate*60), fmtDuration((float64(lim.MaxBytes)-last)/rate))
	}
	maxAge := time.Duration(lim.MaxAgeS * float64(time.Second))
	switch {
	case !lim.DiscardNew:
		v.Note = fmt.Sprintf("%.0f%% of its %s limit, %s; then drops its oldest", 100*last/float64(lim.MaxBytes), fmtBytes(float64(lim.MaxBytes)), fill)
	case fill == "full":
		v.Bounded = false
		v.Note = fmt.Sprintf("full at its %s limit: refuses writes", fmtBytes(float64(lim.MaxBytes)))
	case rate <= 0:
		v.Note = fmt.Sprintf("%.0f%% of its %s limit, not growing", 100*last/float64(lim.MaxBytes), fmtBytes(float64(lim.MaxBytes)))
	case maxAge <= 0:
		v.Bounded = last-mid <= max(tol.rel*mid, tol.streamsAbs)
		v.Note = fmt.Sprintf("%s; refuses writes when full, no MaxAge frees room", fill)
	default:
		// Entries live maxAge: at this rate the bucket levels off at
		// rate x maxAge, which must fit.
		level := rate * maxAge.Seconds()
		v.Bounded = level <= float64(lim.MaxBytes)
		v.Note = fmt.Sprintf("%s; levels off at %s after its MaxAge of %s, limit %s (refuses writes when full)",
			fill, fmtBytes(level), fmtDuration(maxAge.Seconds()), fmtBytes(float64(lim.MaxBytes)))
	}
	return v
}

// quantile q (0..1) of v, interpolated between the closest ranks (v is
// not changed); 0 for none.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// unbounded lists the series judged unbounded; an error names them.
func unbounded(verdicts []Verdict) error {
	var errs []error
	for _, v := range verdicts {
		if !v.Bounded {
			errs = append(errs, fmt.Errorf("%s grew: %s %s -> %s (allowed +%s) %s", v.Series, v.Stat,
				fmtValue(v.Series, v.Middle), fmtValue(v.Series, v.Last), fmtValue(v.Series, v.Allowed), v.Note))
		}
	}
	return errors.Join(errs...)
}

// fmtValue prints a series' value: bytes for RSS and streams, else a count.
func fmtValue(series string, v float64) string {
	if series == "rss" || len(series) > 7 && series[:7] == "stream " {
		return fmtBytes(v)
	}
	return fmt.Sprintf("%.0f", v)
}

// fmtBytes prints a byte count in KiB, MiB or GiB.
func fmtBytes(b float64) string {
	switch {
	case b < 0:
		return "-" + fmtBytes(-b)
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// fmtDuration prints seconds as a rounded duration.
func fmtDuration(secs float64) string {
	if secs > 365*24*3600 {
		return "over a year"
	}
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
