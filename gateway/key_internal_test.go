package gateway

import (
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/streams"
)

// Request keys are the gateway's id, a dash and a counter in base 36, each
// new, and their publish's reply subject the gateway's ack prefix and the
// key; one allocation for both.
func TestNextKey(t *testing.T) {
	g := &Gateway{}
	g.cfg.ID = "gw1"
	g.ackPrefix = streams.PubAckPrefix(g.cfg.ID)
	g.keySeq.Store(35)
	if k, ack := g.nextKey(); k != "gw1-10" || ack != g.ackPrefix+"gw1-10" {
		t.Fatalf("key %q, ack subject %q, want gw1-10 and %sgw1-10", k, ack, g.ackPrefix)
	}
	if k, ack := g.nextKey(); k != "gw1-11" || ack != g.ackPrefix+"gw1-11" {
		t.Fatalf("key %q, ack subject %q, want gw1-11 and %sgw1-11", k, ack, g.ackPrefix)
	}
	// An id too long for the stack buffer still makes the right key.
	g.cfg.ID = strings.Repeat("g", 200)
	g.ackPrefix = streams.PubAckPrefix(g.cfg.ID)
	if k, ack := g.nextKey(); k != g.cfg.ID+"-12" || ack != g.ackPrefix+k {
		t.Fatalf("key %q, ack subject %q", k, ack)
	}
	g.cfg.ID = "gw1"
	g.ackPrefix = streams.PubAckPrefix(g.cfg.ID)
	if n := testing.AllocsPerRun(100, func() { _, _ = g.nextKey() }); n != 1 {
		t.Errorf("%.0f allocations a key, want 1", n)
	}
}
