package workers

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/schema"
)

// Metrics. With Options.Metrics set, a running group counts its deliveries
// and times its handlers there (namespace mcpstream, subsystem worker).
// Every group in a process shares the same vectors, told apart by the group
// label: the first Run registers them and later ones, finding them
// registered (prometheus.AlreadyRegisteredError), use the registered ones.
// Without Options.Metrics the runner's metrics are nil and cost nothing.
//
// handler_duration_seconds has a name label: the tool's or prompt's name,
// which the group's own registrations bound (an unknown name is never
// used: no handler runs for it). Resources and completions have an empty
// name, since a template matches URIs without bound.

// delivery indexes deliveryNames.
type delivery uint8

const (
	deliveredOK delivery = iota
	deliveredError
	deliveredExpired
	deliveredRedelivered
	deliveredDuplicate
	deliveredDrained
	numDeliveries
)

// deliveryNames are the values of deliveries_total's outcome label; each
// delivery has one: drained (handed back to the stream unanswered, for
// another replica, because the group was draining: the handler had not
// started, or the drain deadline cancelled it), expired (dropped, or its
// answer withheld, because the deadline passed or the client cancelled),
// duplicate (a later delivery answered from the result bucket without
// running), redelivered (a later delivery that ran the handler again),
// else error (a JSON-RPC error, a panic, an envelope that cannot be
// decoded) or ok (a result, including a tool result with isError).
var deliveryNames = [numDeliveries]string{"ok", "error", "expired", "redelivered", "duplicate", "drained"}

// handlerKind indexes kindNames.
type handlerKind uint8

const (
	kindTool handlerKind = iota
	kindPrompt
	kindResource
	kindCompletion
	numKinds
)

// kindNames are the values of handler_duration_seconds' kind label.
var kindNames = [numKinds]string{"tool", "prompt", "resource", "completion"}

// kindOf returns the kind of handler serving method, and false for a
// method no handler serves.
func kindOf(method string) (handlerKind, bool) {
	switch method {
	case schema.MethodToolsCall:
		return kindTool, true
	case schema.MethodPromptsGet:
		return kindPrompt, true
	case schema.MethodResourcesRead:
		return kindResource, true
	case schema.MethodCompletionComplete:
		return kindCompletion, true
	}
	return 0, false
}

// handlerBuckets span 0.1 ms to 60 s in 20 exponential steps (x2 each).
var handlerBuckets = prometheus.ExponentialBucketsRange(0.0001, 60, 20)

// metrics are a runner's Prometheus metrics. A nil *metrics is valid: its
// methods do nothing.
type metrics struct {
	group      string
	deliveries [numDeliveries]prometheus.Counter
	busy       prometheus.Gauge
	durations  *prometheus.HistogramVec
	// handlers caches durations' children by kind and name; it is copied
	// on write, so reading it takes no lock.
	handlers atomic.Pointer[map[handlerKey]prometheus.Observer]
	mu       sync.Mutex // serializes writers of handlers
}

type handlerKey struct {
	kind handlerKind
	name string
}

// newMetrics registers the worker metrics on reg, or finds them there,
// and returns group's. It returns nil and no error for a nil reg, and an
// error when reg holds another collector under one of their names.
func newMetrics(reg prometheus.Registerer, group string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	const ns, sub = "mcpstream", "worker"
	deliveries, err := registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "deliveries_total",
		Help: "Envelopes delivered to the group's handlers, by outcome (ok, error, expired, redelivered, duplicate, drained)."}, []string{"group", "outcome"}))
	if err != nil {
		return nil, err
	}
	durations, err := registerShared(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "handler_duration_seconds",
		Help:    "Run time of handlers, by kind (tool, prompt, resource, completion) and name (of the tool or prompt; empty for the others).",
		Buckets: handlerBuckets}, []string{"group", "kind", "name"}))
	if err != nil {
		return nil, err
	}
	busy, err := registerShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "handlers_busy",
		Help: "Handler goroutines working on an envelope (at most Options.Concurrency per running group)."}, []string{"group"}))
	if err != nil {
		return nil, err
	}
	m := &metrics{group: group, busy: busy.WithLabelValues(group), durations: durations}
	for i := range m.deliveries {
		m.deliveries[i] = deliveries.WithLabelValues(group, deliveryNames[i])
	}
	m.handlers.Store(&map[handlerKey]prometheus.Observer{})
	return m, nil
}

// registerShared registers c on reg and returns it, or returns the
// collector of the same description already registered (another group's
// runner registered it first). It returns an error when reg refuses c for
// another reason.
func registerShared[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("registering metrics: %w", err)
}

// delivered counts one delivery's outcome.
func (m *metrics) delivered(d delivery) {
	if m != nil {
		m.deliveries[d].Inc()
	}
}

// handlerStarted and handlerDone count a handler goroutine busy.
func (m *metrics) handlerStarted() {
	if m != nil {
		m.busy.Inc()
	}
}

func (m *metrics) handlerDone() {
	if m != nil {
		m.busy.Dec()
	}
}

// ran records d, the run time of a request for method that made call
// (nil when it ended before). A tool or prompt counts once its handler
// was found; a resource read or a completion always does.
func (m *metrics) ran(method string, call *Call, d time.Duration) {
	if m == nil || call == nil {
		return
	}
	kind, ok := kindOf(method)
	if !ok || (call.handler == "" && (kind == kindTool || kind == kindPrompt)) {
		return
	}
	m.observer(handlerKey{kind, call.handler}).Observe(d.Seconds())
}

// observer returns the durations child of k.
func (m *metrics) observer(k handlerKey) prometheus.Observer {
	if o, ok := (*m.handlers.Load())[k]; ok {
		return o
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.handlers.Load()
	if o, ok := old[k]; ok {
		return o
	}
	o := m.durations.WithLabelValues(m.group, kindNames[k.kind], k.name)
	next := make(map[handlerKey]prometheus.Observer, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = o
	m.handlers.Store(&next)
	return o
}
