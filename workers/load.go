package workers

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// loadMeter counts what a replica's load report says: handlers busy, and
// the handlers' run times since the last report.
type loadMeter struct {
	busy    atomic.Int64
	peak    atomic.Int64 // the most handlers busy at once since the last report
	ran     atomic.Int64 // handlers ended since the last report
	ranNs   atomic.Int64 // their run times, summed
	meanNs  int64        // the reporter's moving mean of run times
	backlog int64        // the last backlog reported (or schema.BacklogNone, BacklogUnknown)
}

// started and ended count a handler busy; ended adds its run time.
func (m *loadMeter) started() {
	n := m.busy.Add(1)
	for p := m.peak.Load(); n > p && !m.peak.CompareAndSwap(p, n); p = m.peak.Load() {
	}
}

func (m *loadMeter) ended(ran time.Duration) {
	m.busy.Add(-1)
	if ran >= 0 {
		m.ranNs.Add(int64(ran))
		m.ran.Add(1)
	}
}

// reportLoad publishes r's load report on the group's load subject every
// Options.LoadInterval until ctx ends. The backlog (the envelopes stored
// and not acknowledged on every partition: what waits in the stream, in
// pulls and in handlers) is read from the consumers only when every
// handler was busy at some moment since the last report, or there was a
// backlog then: a replica whose handlers never all ran at once would have
// taken any envelope waiting, so there is none to measure, and the
// JetStream API is asked nothing while the group keeps up. (The handlers
// busy at the moment of a report say little: under a backlog one of them
// is often between two envelopes.)
func (r *runner) reportLoad(ctx context.Context, consumers []jetstream.Consumer) {
	t := time.NewTicker(r.o.LoadInterval)
	defer t.Stop()
	m := &r.load
	m.backlog = schema.BacklogNone
	subject := streams.LoadSubject(r.g.name)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := m.ran.Swap(0); n > 0 {
			mean := m.ranNs.Swap(0) / n
			if m.meanNs == 0 {
				m.meanNs = mean
			} else {
				m.meanNs += (mean - m.meanNs) / 4 // a moving mean over about four reports
			}
		}
		busy := m.busy.Load()
		peak := m.peak.Swap(busy)
		if peak >= int64(r.o.Concurrency) || m.backlog > 0 {
			m.backlog = measureBacklog(ctx, consumers, r.o.LoadInterval)
		} else {
			m.backlog = schema.BacklogNone
		}
		rep := schema.LoadReport{Group: r.g.name, Instance: r.o.Instance, At: time.Now().UnixNano(),
			Concurrency: r.o.Concurrency, Busy: int(busy), Backlog: m.backlog, ServiceNs: m.meanNs,
			QueueTargetNs: int64(r.o.QueueTarget)}
		b, err := rep.Marshal()
		if err != nil {
			continue
		}
		_ = r.nc.PublishMsg(&nats.Msg{Subject: subject, Data: b})
	}
}

// measureBacklog sums the envelopes pending and awaiting acknowledgement
// on every consumer, or returns schema.BacklogUnknown if a consumer's info
// does not come within timeout.
func measureBacklog(ctx context.Context, consumers []jetstream.Consumer, timeout time.Duration) int64 {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 50*time.Millisecond))
	defer cancel()
	var n int64
	for _, c := range consumers {
		info, err := c.Info(ctx)
		if err != nil {
			return schema.BacklogUnknown
		}
		n += int64(info.NumPending) + int64(info.NumAckPending)
	}
	return n
}
