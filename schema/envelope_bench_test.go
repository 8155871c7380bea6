package schema_test

import (
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

// BenchmarkEnvelope is a tools/call envelope's trip: the gateway encodes
// it, a worker decodes it.
func BenchmarkEnvelope(b *testing.B) {
	params, err := schema.JSONToMsgpack(nil, []byte(`{"name":"echo","arguments":{"text":"hello"}}`))
	if err != nil {
		b.Fatal(err)
	}
	env := &schema.Envelope{Key: "gw-0123456789ab-1a2b", Method: "tools/call", Name: "echo", Params: params,
		Session: "0123456789abcdef0123456789abcdef", Revision: schema.LatestRevision, Deadline: 1 << 60,
		ReplyTo: "mcp.reply.gw-0123456789ab", RequestID: "7", ClientCaps: []byte{0x80}}
	benchTrip(b, env.Marshal, func(data []byte) error {
		_, err := schema.UnmarshalEnvelope(data)
		return err
	})
}

// BenchmarkReply is a result's trip back: a worker encodes it, the
// gateway decodes it.
func BenchmarkReply(b *testing.B) {
	result, err := schema.JSONToMsgpack(nil, []byte(`{"content":[{"type":"text","text":"hello"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	rep := &schema.Reply{Key: "gw-0123456789ab-1a2b", Result: result, RunNs: 12345}
	benchTrip(b, rep.Marshal, func(data []byte) error {
		_, err := schema.UnmarshalReply(data)
		return err
	})
}

// benchTrip runs a message's marshal and unmarshal as two sub-benchmarks.
func benchTrip(b *testing.B, marshal func() ([]byte, error), unmarshal func([]byte) error) {
	data, err := marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := unmarshal(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReplyError is an error reply's decoding at the gateway: the
// nested error, with data, is decoded too.
func BenchmarkReplyError(b *testing.B) {
	rep := &schema.Reply{Key: "gw-0123456789ab-1a2b", RunNs: 12345,
		Error: schema.OverloadedError("queue full", 250)}
	data, _ := rep.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schema.UnmarshalReply(data); err != nil {
			b.Fatal(err)
		}
	}
}
