package testkit

import (
	"encoding/hex"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	collmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is a span as the receiver got it, decoded for assertions.
//
// Attribute values are string, int64, float64, bool or []byte; arrays are
// []string, []int64, []float64 or []bool when their elements are all of
// one of those types (as the OpenTelemetry API's slice attributes always
// are), else []any (an empty array too); maps are map[string]any. A map
// with no attribute is nil.
type Span struct {
	TraceID      string // 32 hex digits
	SpanID       string // 16 hex digits
	ParentSpanID string // 16 hex digits, "" for a root
	Name         string
	Kind         trace.SpanKind // String gives "server", "client", …
	Start, End   time.Time
	Attributes   map[string]any
	Events       []Event
	Links        []Link
	Status       Status
	Resource     map[string]any // the resource's attributes: service.name, …
	Scope        string         // the instrumentation scope (the tracer's name)
}

// Event is a span's event.
type Event struct {
	Name       string
	Time       time.Time
	Attributes map[string]any
}

// Link is a span's link to another span.
type Link struct {
	TraceID, SpanID string
	Attributes      map[string]any
}

// Status is a span's status, its code as the OpenTelemetry API has it
// (OTLP numbers Ok and Error the other way round).
type Status struct {
	Code    codes.Code
	Message string
}

// Duration is End less Start.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Service is the resource's service.name.
func (s Span) Service() string { v, _ := s.Resource["service.name"].(string); return v }

// Metric is one metric of one export, decoded for assertions.
type Metric struct {
	Name, Description, Unit string
	// Type is "gauge", "sum", "histogram", "exponential_histogram" or
	// "summary".
	Type     string
	Points   []Point
	Resource map[string]any
	Scope    string // the instrumentation scope (the meter's name)
}

// Point is a data point of a metric.
type Point struct {
	Attributes map[string]any
	Time       time.Time
	// Value is a gauge's or a sum's value (an integer one converted), or a
	// histogram's or a summary's sum.
	Value float64
	// Count is a histogram's or a summary's count, 0 for a gauge or sum.
	Count uint64
}

// Service is the resource's service.name.
func (m Metric) Service() string { v, _ := m.Resource["service.name"].(string); return v }

func decodeSpans(req *colltracepb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		res := attributes(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				span := Span{
					TraceID:      hexID(s.GetTraceId()),
					SpanID:       hexID(s.GetSpanId()),
					ParentSpanID: hexID(s.GetParentSpanId()),
					Name:         s.GetName(),
					Kind:         trace.SpanKind(s.GetKind()), // the same numbers
					Start:        unixNano(s.GetStartTimeUnixNano()),
					End:          unixNano(s.GetEndTimeUnixNano()),
					Attributes:   attributes(s.GetAttributes()),
					Status:       Status{Code: statusCode(s.GetStatus().GetCode()), Message: s.GetStatus().GetMessage()},
					Resource:     res,
					Scope:        ss.GetScope().GetName(),
				}
				for _, e := range s.GetEvents() {
					span.Events = append(span.Events, Event{Name: e.GetName(), Time: unixNano(e.GetTimeUnixNano()), Attributes: attributes(e.GetAttributes())})
				}
				for _, l := range s.GetLinks() {
					span.Links = append(span.Links, Link{TraceID: hexID(l.GetTraceId()), SpanID: hexID(l.GetSpanId()), Attributes: attributes(l.GetAttributes())})
				}
				out = append(out, span)
			}
		}
	}
	return out
}

func decodeMetrics(req *collmetricpb.ExportMetricsServiceRequest) []Metric {
	var out []Metric
	for _, rm := range req.GetResourceMetrics() {
		res := attributes(rm.GetResource().GetAttributes())
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				metric := Metric{Name: m.GetName(), Description: m.GetDescription(), Unit: m.GetUnit(), Resource: res, Scope: sm.GetScope().GetName()}
				switch d := m.GetData().(type) {
				case *metricpb.Metric_Gauge:
					metric.Type, metric.Points = "gauge", numberPoints(d.Gauge.GetDataPoints())
				case *metricpb.Metric_Sum:
					metric.Type, metric.Points = "sum", numberPoints(d.Sum.GetDataPoints())
				case *metricpb.Metric_Histogram:
					metric.Type = "histogram"
					for _, p := range d.Histogram.GetDataPoints() {
						metric.Points = append(metric.Points, Point{attributes(p.GetAttributes()), unixNano(p.GetTimeUnixNano()), p.GetSum(), p.GetCount()})
					}
				case *metricpb.Metric_ExponentialHistogram:
					metric.Type = "exponential_histogram"
					for _, p := range d.ExponentialHistogram.GetDataPoints() {
						metric.Points = append(metric.Points, Point{attributes(p.GetAttributes()), unixNano(p.GetTimeUnixNano()), p.GetSum(), p.GetCount()})
					}
				case *metricpb.Metric_Summary:
					metric.Type = "summary"
					for _, p := range d.Summary.GetDataPoints() {
						metric.Points = append(metric.Points, Point{attributes(p.GetAttributes()), unixNano(p.GetTimeUnixNano()), p.GetSum(), p.GetCount()})
					}
				}
				out = append(out, metric)
			}
		}
	}
	return out
}

func numberPoints(ps []*metricpb.NumberDataPoint) []Point {
	out := make([]Point, 0, len(ps))
	for _, p := range ps {
		v := p.GetAsDouble()
		if i, ok := p.GetValue().(*metricpb.NumberDataPoint_AsInt); ok {
			v = float64(i.AsInt)
		}
		out = append(out, Point{Attributes: attributes(p.GetAttributes()), Time: unixNano(p.GetTimeUnixNano()), Value: v})
	}
	return out
}

// statusCode maps OTLP's status code (Unset 0, Ok 1, Error 2) to the
// API's (Unset 0, Error 1, Ok 2).
func statusCode(c tracepb.Status_StatusCode) codes.Code {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return codes.Ok
	case tracepb.Status_STATUS_CODE_ERROR:
		return codes.Error
	}
	return codes.Unset
}

func hexID(id []byte) string {
	if len(id) == 0 {
		return ""
	}
	return hex.EncodeToString(id)
}

func unixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns))
}

func attributes(kvs []*commonpb.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_KvlistValue:
		return attributes(x.KvlistValue.GetValues())
	case *commonpb.AnyValue_ArrayValue:
		vs := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			vs = append(vs, anyValue(e))
		}
		return typedSlice(vs)
	}
	return nil
}

// typedSlice gives vs as a []string, []int64, []float64 or []bool when all
// its elements are of that type, else as it is.
func typedSlice(vs []any) any {
	if len(vs) == 0 {
		return vs
	}
	switch vs[0].(type) {
	case string:
		return sliceOf[string](vs)
	case int64:
		return sliceOf[int64](vs)
	case float64:
		return sliceOf[float64](vs)
	case bool:
		return sliceOf[bool](vs)
	}
	return vs
}

func sliceOf[T any](vs []any) any {
	out := make([]T, len(vs))
	for i, v := range vs {
		t, ok := v.(T)
		if !ok {
			return vs
		}
		out[i] = t
	}
	return out
}
