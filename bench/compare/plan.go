package main

import (
	"fmt"
	"slices"
	"strings"
)

// setting is one way of choosing each server's GC target (GOGC).
type setting struct {
	// name is the setting's name in --settings and the JSON report.
	name string
	// gogc is each target's GC target under this setting.
	gogc map[string]int
}

// Setting names.
const (
	settingShipped = "shipped" // each server at its shipped default
	settingSame    = "same"    // every server at the common --gogc
)

// settingNames are the settings, in the default order.
var settingNames = []string{settingShipped, settingSame}

// newSetting is the setting named name for the targets, common being the
// GC target every server gets in the "same" setting.
func newSetting(name string, targets []string, common int) (setting, error) {
	s := setting{name: name, gogc: map[string]int{}}
	for _, n := range targets {
		switch name {
		case settingShipped:
			s.gogc[n] = findTarget(n).shippedGOGC
		case settingSame:
			s.gogc[n] = common
		default:
			return setting{}, fmt.Errorf("unknown setting %q (have %s)", name, strings.Join(settingNames, ", "))
		}
	}
	return s, nil
}

// title describes the setting in a table's heading, e.g. "shipped defaults:
// mcpstream GOGC=400 (its own), mcp-go and go-sdk GOGC=100 (Go's)".
func (s setting) title(targets []string) string {
	switch s.name {
	case settingShipped:
		var parts []string
		for _, n := range targets {
			who := "Go's default"
			if s.gogc[n] != goDefaultGOGC {
				who = "the binary's own default"
			}
			parts = append(parts, fmt.Sprintf("%s GOGC=%s (%s)", n, formatGOGC(s.gogc[n]), who))
		}
		return "each server at its shipped GC target: " + strings.Join(parts, ", ")
	default:
		return fmt.Sprintf("every server at the same GC target, GOGC=%s (--gogc)", formatGOGC(s.gogc[targets[0]]))
	}
}

// setting is the setting named name, nil if not run.
func (o *options) setting(name string) *setting {
	for i := range o.settings {
		if o.settings[i].name == name {
			return &o.settings[i]
		}
	}
	return nil
}

// runKey is one server process of a round: a target at a GC target.
type runKey struct {
	target string
	gogc   int
}

func (k runKey) String() string { return fmt.Sprintf("%s GOGC=%s", k.target, formatGOGC(k.gogc)) }

// roundOrder is the runs of round r (from 1): every target under every
// setting in turn, a target at a GC target it already runs at in this
// round not again (mcpstream ships with the common 400, so one run of it
// serves both settings), and every other round in reverse order, so that a
// drift of the machine within a round falls on every run alike.
func roundOrder(settings []setting, targets []string, r int) []runKey {
	var keys []runKey
	for _, s := range settings {
		for _, n := range targets {
			k := runKey{n, s.gogc[n]}
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	if r%2 == 0 {
		slices.Reverse(keys)
	}
	return keys
}
