package gateway

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/gateway/internal/admission"
	"github.com/mcpstream/mcpstream/schema"
)

// Metrics. With Config.Metrics set, the gateway registers its Prometheus
// metrics there (namespace mcpstream, subsystem gateway, every series
// labelled gateway=<ID>); without it, g.metrics is nil, its methods do
// nothing, and a request costs a nil check and a few type assertions more.
// With it, a request costs one allocation more: its meteredWriter.
//
// Labels stay bounded: a method label is one of methodNames, never a tool
// name, a session id or a principal. A vector's children are resolved once
// (on first use for requests and durations, so that methods never seen
// export nothing; at construction for refusals) and kept, so the hot path
// does no label hashing.

// methodLabel indexes methodNames.
type methodLabel uint8

const (
	methodOther methodLabel = iota
	methodGET
	methodDELETE
	methodBatch
	methodResponse
	methodInitialize
	methodPing
	methodToolsList
	methodToolsCall
	methodPromptsList
	methodPromptsGet
	methodResourcesList
	methodResourcesTemplatesList
	methodResourcesRead
	methodResourcesSubscribe
	methodResourcesUnsubscribe
	methodLoggingSetLevel
	methodCompletionComplete
	methodServerDiscover
	methodSubscriptionsListen
	methodTasksGet
	methodTasksUpdate
	methodTasksCancel
	methodNotificationInitialized
	methodNotificationCancelled
	numMethods
)

// methodNames are the values of the method label: the JSON-RPC methods the
// gateway serves, "GET" and "DELETE" for those HTTP requests, "batch" for a
// JSON-RPC batch, "response" for a client's answer to a worker's request,
// and "other" for anything else (unknown methods included).
var methodNames = [numMethods]string{
	methodOther:                   "other",
	methodGET:                     "GET",
	methodDELETE:                  "DELETE",
	methodBatch:                   "batch",
	methodResponse:                "response",
	methodInitialize:              schema.MethodInitialize,
	methodPing:                    schema.MethodPing,
	methodToolsList:               schema.MethodToolsList,
	methodToolsCall:               schema.MethodToolsCall,
	methodPromptsList:             schema.MethodPromptsList,
	methodPromptsGet:              schema.MethodPromptsGet,
	methodResourcesList:           schema.MethodResourcesList,
	methodResourcesTemplatesList:  schema.MethodResourcesTemplatesList,
	methodResourcesRead:           schema.MethodResourcesRead,
	methodResourcesSubscribe:      schema.MethodResourcesSubscribe,
	methodResourcesUnsubscribe:    schema.MethodResourcesUnsubscribe,
	methodLoggingSetLevel:         schema.MethodLoggingSetLevel,
	methodCompletionComplete:      schema.MethodCompletionComplete,
	methodServerDiscover:          schema.MethodServerDiscover,
	methodSubscriptionsListen:     schema.MethodSubscriptionsListen,
	methodTasksGet:                schema.MethodTasksGet,
	methodTasksUpdate:             schema.MethodTasksUpdate,
	methodTasksCancel:             schema.MethodTasksCancel,
	methodNotificationInitialized: schema.NotificationInitialized,
	methodNotificationCancelled:   schema.NotificationCancelled,
}

// methodsByName maps the JSON-RPC methods of methodNames to their label.
var methodsByName = func() map[string]methodLabel {
	m := make(map[string]methodLabel, numMethods)
	for i := methodInitialize; i < numMethods; i++ {
		m[methodNames[i]] = i
	}
	return m
}()

// methodOf returns the label of a JSON-RPC method (methodOther for one the
// gateway does not know).
func methodOf(method string) methodLabel {
	return methodsByName[method] // methodOther when absent
}

// outcomeLabel indexes outcomeNames.
type outcomeLabel uint8

const (
	outcomeOK outcomeLabel = iota
	outcomeError
	outcomeRefused
	outcomeUnauthorized
	outcomeBadRequest
	numOutcomes
)

// outcomeNames are the values of the outcome label: ok (a result, or 202
// for a notification), error (a JSON-RPC error or a 5xx other than 503),
// refused (any 503 with Retry-After: overload, draining, or a session
// store or key source the gateway cannot reach now; refusals_total tells
// the overload reasons), unauthorized (refused by Config.Auth: 401, 403 or
// 400), bad_request (any other 4xx: protocol errors, unknown sessions,
// refused origins).
var outcomeNames = [numOutcomes]string{"ok", "error", "refused", "unauthorized", "bad_request"}

// refusal indexes refusalNames.
type refusal uint8

const (
	refusedSessionLimit refusal = iota
	refusedPrincipalLimit
	refusedGatewayLimit
	refusedStreamFull
	refusedDraining
	refusedStreamLimit
	refusedConnLimit
	refusedPrincipalRate
	refusedGroupQueue
	refusedBodyMemory
	numRefusals
)

// refusalNames are the values of refusals_total's reason label: every
// place the gateway sheds load with an overloaded error (-32000, 503 +
// Retry-After over HTTP).
var refusalNames = [numRefusals]string{"session_limit", "principal_limit", "gateway_limit", "stream_full", "draining", "stream_limit", "connection_limit", "principal_rate", "group_queue", "body_memory"}

// refusalErrors answer each refusal: -32000, with the reason the client is
// told and a retry after a second.
var refusalErrors = func() (errs [numRefusals]*schema.Error) {
	for reason, text := range [numRefusals]string{
		refusedSessionLimit:   admission.ErrSessionLimit.Error(),
		refusedPrincipalLimit: admission.ErrPrincipalLimit.Error(),
		refusedGatewayLimit:   admission.ErrGatewayLimit.Error(),
		refusedStreamFull:     "request stream full",
		refusedDraining:       "gateway shutting down",
		refusedStreamLimit:    "gateway event stream limit reached",
		refusedConnLimit:      "gateway connection limit reached",
		refusedPrincipalRate:  principalRateReason,
		refusedGroupQueue:     groupQueueReason,
		refusedBodyMemory:     "gateway request memory full",
	} {
		errs[reason] = schema.OverloadedError(text, 1000)
	}
	return errs
}()

// overloadedError is the error that answers a refusal for reason (HTTP
// 503, with Retry-After).
func overloadedError(reason refusal) *schema.Error { return refusalErrors[reason] }

// refusalOfError is the reason whose refusal e answers, if it answers one.
func refusalOfError(e *schema.Error) (refusal, bool) {
	for reason, re := range refusalErrors {
		if re == e {
			return refusal(reason), true
		}
	}
	return 0, false
}

// overloaded counts a refusal for reason in the metrics and returns the
// error that answers it. It is the one way the gateway sheds load.
func (g *Gateway) overloaded(reason refusal) *schema.Error {
	g.metrics.refused(reason)
	return overloadedError(reason)
}

// latencyBuckets span 0.1 ms to 60 s in 20 exponential steps (x2 each).
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 60, 20)

// metrics are a gateway's Prometheus metrics. A nil *metrics is valid: its
// methods do nothing.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	requestVec  *prometheus.CounterVec
	durationVec *prometheus.HistogramVec
	requests    [numMethods][numOutcomes]atomic.Pointer[prometheus.Counter]
	durations   [numMethods]atomic.Pointer[prometheus.Observer]
	refusals    [numRefusals]prometheus.Counter
	refusalTime prometheus.Histogram
	overhead    prometheus.Histogram
}

// newMetrics registers g's metrics on reg, every series labelled with the
// gateway's id. It returns nil and no error for a nil reg, and an error
// when a metric cannot be registered (another gateway with the same id on
// the same registry, say); nothing is then left registered.
func newMetrics(reg prometheus.Registerer, g *Gateway) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	const ns, sub = "mcpstream", "gateway"
	m := &metrics{reg: prometheus.WrapRegistererWith(prometheus.Labels{"gateway": g.cfg.ID}, reg)}
	m.requestVec = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
		Help: "HTTP requests to the MCP endpoints, by JSON-RPC method (GET, DELETE, batch, response, other besides) and outcome (ok, error, refused, unauthorized, bad_request)."},
		[]string{"method", "outcome"})
	m.durationVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
		Help:    "Time from a request's arrival in the handler to its response written (the end of the stream for one answered on an SSE stream), for requests served (outcome ok or error).",
		Buckets: latencyBuckets}, []string{"method"})
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "refusals_total",
		Help: "Requests refused for lack of room (-32000, 503 with Retry-After over HTTP), by reason."}, []string{"reason"})
	for i := range m.refusals {
		m.refusals[i] = refusals.WithLabelValues(refusalNames[i])
	}
	m.refusalTime = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "refusal_duration_seconds",
		Help:    "Time from a refused request's arrival in the handler to its refusal written (outcome refused: a 503 or 429 with Retry-After), a hold over its principal's rate included: how fast the gateway sheds load.",
		Buckets: latencyBuckets})
	m.overhead = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "queue_overhead_seconds",
		Help:    "A worker call's latency less its handler's run time (queueing and transit), as the adaptive in-flight limit sees it.",
		Buckets: latencyBuckets})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, f)
	}
	m.collectors = []prometheus.Collector{m.requestVec, m.durationVec, refusals, m.refusalTime, m.overhead,
		gauge("inflight", "Calls waiting on workers.", func() float64 { return float64(g.admission.InFlight()) }),
		gauge("inflight_limit", "The adaptive in-flight limit now: calls beyond it are refused.", func() float64 { return float64(g.admission.Limit()) }),
		gauge("event_streams", "Event streams open (session GET streams, subscriptions/listen streams, HTTP+SSE streams).",
			func() float64 { return float64(g.eventStreams.open.Load()) }),
		gauge("rate_held", "Requests over their principal's rate held before they are served or refused (Config.PrincipalRateHold).",
			func() float64 { return float64(g.holds.Load()) }),
		gauge("sessions_cached", "Sessions in the gateway's cache.", func() float64 { return float64(g.sessions.cached()) }),
	}
	if g.loads != nil {
		m.collectors = append(m.collectors, newGroupCollector(g.loads))
	}
	for i, c := range m.collectors {
		if err := m.reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				m.reg.Unregister(done)
			}
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}

// unregister removes the metrics from their registry.
func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// refusalOf is the refusal reason of an admission error.
func refusalOf(err error) refusal {
	switch err {
	case admission.ErrSessionLimit:
		return refusedSessionLimit
	case admission.ErrPrincipalLimit:
		return refusedPrincipalLimit
	}
	return refusedGatewayLimit
}

// refused counts a refusal for reason.
func (m *metrics) refused(reason refusal) {
	if m != nil {
		m.refusals[reason].Inc()
	}
}

// queueOverhead records a call's overhead (latency less handler run time).
func (m *metrics) queueOverhead(d time.Duration) {
	if m != nil {
		m.overhead.Observe(max(0, d).Seconds())
	}
}

// request returns the requests_total child of method and outcome.
func (m *metrics) request(method methodLabel, outcome outcomeLabel) prometheus.Counter {
	slot := &m.requests[method][outcome]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := m.requestVec.WithLabelValues(methodNames[method], outcomeNames[outcome])
	slot.CompareAndSwap(nil, &c)
	return c
}

// duration returns the request_duration_seconds child of method.
func (m *metrics) duration(method methodLabel) prometheus.Observer {
	slot := &m.durations[method]
	if o := slot.Load(); o != nil {
		return *o
	}
	o := m.durationVec.WithLabelValues(methodNames[method])
	slot.CompareAndSwap(nil, &o)
	return o
}

// begin starts counting a request: the handler answers through the
// writer it returns, which end then counts by method and outcome, and
// times if the request was served or refused.
func (m *metrics) begin(w http.ResponseWriter, r *http.Request) *meteredWriter {
	mw := &meteredWriter{ResponseWriter: w, start: time.Now()}
	switch r.Method {
	case http.MethodGet:
		mw.method = methodGET
	case http.MethodDelete:
		mw.method = methodDELETE
	}
	return mw
}

// end counts the request mw answered, and times it if it was served or
// refused.
func (m *metrics) end(mw *meteredWriter) {
	outcome := mw.outcome()
	m.request(mw.method, outcome).Inc()
	switch outcome {
	case outcomeOK, outcomeError:
		m.duration(mw.method).Observe(time.Since(mw.start).Seconds())
	case outcomeRefused:
		m.refusalTime.Observe(time.Since(mw.start).Seconds())
	}
}

// meteredWriter is the response writer of a request counted in the
// metrics: it keeps the status answered and what the handler noted
// (noteMethod, noteRPCError, noteUnauthorized). http.ResponseController
// reaches the server's writer through Unwrap (flushing, deadlines,
// hijacking).
type meteredWriter struct {
	http.ResponseWriter
	start        time.Time
	status       int
	method       methodLabel
	rpcError     bool
	unauthorized bool
}

func (e *meteredWriter) WriteHeader(status int) {
	if e.status == 0 {
		e.status = status
	}
	e.ResponseWriter.WriteHeader(status)
}

// Unwrap returns the server's response writer.
func (e *meteredWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// outcome classifies what was answered (no status written means 200: a
// body written without one, or a hijacked stream).
func (e *meteredWriter) outcome() outcomeLabel {
	switch s := e.status; {
	case s == http.StatusServiceUnavailable, s == http.StatusTooManyRequests:
		return outcomeRefused
	case e.unauthorized:
		return outcomeUnauthorized
	case s >= 500:
		return outcomeError
	case s >= 400:
		return outcomeBadRequest
	case e.rpcError:
		return outcomeError
	}
	return outcomeOK
}

// noteMethod records, for the metrics, the JSON-RPC method of the request
// w answers.
func noteMethod(w http.ResponseWriter, method methodLabel) {
	if e, ok := w.(*meteredWriter); ok {
		e.method = method
	}
}

// noteMessage records, for the metrics, the method of msg, the request w
// answers ("response" for a client's response).
func noteMessage(w http.ResponseWriter, msg *schema.Message) {
	if e, ok := w.(*meteredWriter); ok {
		if msg.Kind() == schema.KindResponse {
			e.method = methodResponse
		} else {
			e.method = methodOf(msg.Method)
		}
	}
}

// noteRPCError records, for the metrics, that w answered a JSON-RPC error.
func noteRPCError(w http.ResponseWriter) {
	if e, ok := w.(*meteredWriter); ok {
		e.rpcError = true
	}
}

// noteUnauthorized records, for the metrics, that Config.Auth refused the
// request w answers.
func noteUnauthorized(w http.ResponseWriter) {
	if e, ok := w.(*meteredWriter); ok {
		e.unauthorized = true
	}
}

// serverWriter returns the server's own response writer under w, for
// http.MaxBytesReader: it tells the server to close the connection after
// an oversized body, which it can only do on that writer.
func serverWriter(w http.ResponseWriter) http.ResponseWriter {
	if e, ok := w.(*meteredWriter); ok {
		return e.ResponseWriter
	}
	return w
}
