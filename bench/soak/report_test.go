package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportOutputs: the JSON holds every sample, one to a line, with the
// streams' limits once; the table a row per sample and the verdicts; the
// charts are PNGs.
func TestReportOutputs(t *testing.T) {
	rep := &Report{Tool: "echo", Args: json.RawMessage(`{}`), Rate: 1000, Load: LoadJSON{IntervalS: 10, Clients: 2}}
	rep.Samples = run12(func(i int) Sample {
		return Sample{RSS: 100 << 20, Goroutines: 200, OpenFiles: 30, OKPerSecond: 1000, Calls: map[string]int64{classOK: 10000},
			Streams: []StreamSample{{Name: "MCP_REQ_0", Bytes: uint64(i) << 20, Msgs: uint64(i), MaxBytes: 256 << 20, MaxMsgs: -1}}}
	})
	rep.Baseline, rep.After = rep.Samples[0], rep.Samples[11]
	var err error
	if rep.Verdicts, err = decide(rep.Samples, rep.Rate, rep.Baseline, rep.After, defaultTolerances(0.15)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "soak.json")
	if err := rep.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Samples      []Sample       `json:"samples"`
		StreamLimits []StreamSample `json:"stream_limits"`
		Tool         string         `json:"tool"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if len(back.Samples) != 12 || back.Tool != "echo" || back.Samples[5].Streams[0].Bytes != 5<<20 || back.Samples[5].Streams[0].MaxBytes != 0 ||
		len(back.StreamLimits) != 1 || back.StreamLimits[0].MaxBytes != 256<<20 {
		t.Errorf("JSON read back: %+v", back)
	}
	if n := bytes.Count(b, []byte(`{"t_s":`)); n != 12 {
		t.Errorf("%d sample lines, want 12", n)
	}
	if rep.Samples[5].Streams[0].MaxBytes != 256<<20 {
		t.Error("writeJSON changed the report's samples")
	}
	var tb strings.Builder
	rep.writeTable(&tb)
	for _, want := range []string{"open loop at 1000 calls/s", "stream MCP_REQ_0", "goroutines after the load", "before", "after"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	if err := rep.charts(filepath.Join(dir, "soak")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rss", "goroutines", "files", "streams", "cpu", "load"} {
		if b, err := os.ReadFile(filepath.Join(dir, "soak-"+name+".png")); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("soak-%s.png is not a PNG (%v)", name, err)
		}
	}
}
