package main

import (
	"io"
	"slices"
	"testing"
	"time"
)

func TestParseSizes(t *testing.T) {
	got, err := parseSizes(" 25,100, ,1000,10000")
	if err != nil || !slices.Equal(got, []int{25, 100, 1000, 10000}) {
		t.Fatalf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "0", "-5", "10,x"} {
		if got, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--sizes", "10,20", "--fraction", "0.25", "--p99", "15ms", "--server-cpus", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.sizes, []int{10, 20}) || o.fraction != 0.25 || o.target != 15*time.Millisecond || o.serverCPUs != "1" {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{{"--fraction", "0"}, {"--fraction", "1.5"}, {"--rate", "-1"}, {"--sizes", "a"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}
