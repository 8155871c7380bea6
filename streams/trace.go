package streams

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// HeaderCarrier carries a trace context in a NATS message's headers, for
// an OpenTelemetry TextMapPropagator (it is a propagation.TextMapCarrier),
// so that NATS-level tools see the trace of what they read. It writes keys
// in lower case (traceparent, tracestate: what other NATS clients write)
// and reads them whatever their case: nats.Header is case-sensitive, and
// OpenTelemetry's HTTP carrier would write Traceparent.
type HeaderCarrier nats.Header

// Get returns the first value of key, matched case-insensitively.
func (c HeaderCarrier) Get(key string) string {
	if v := nats.Header(c).Get(key); v != "" {
		return v
	}
	for k, vals := range c {
		if len(vals) > 0 && strings.EqualFold(k, key) {
			return vals[0]
		}
	}
	return ""
}

// Set sets key, in lower case, to value.
func (c HeaderCarrier) Set(key, value string) { c[strings.ToLower(key)] = []string{value} }

// Keys lists the keys present.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
