package schema

import "math"

// ScalarKind is what a [Scalar] holds.
type ScalarKind uint8

const (
	// ScalarBool: Bool holds it.
	ScalarBool ScalarKind = iota + 1
	// ScalarUint: a non-negative integer, in Uint.
	ScalarUint
	// ScalarInt: a negative integer, in Int.
	ScalarInt
	// ScalarFloat: a finite float64, in Float.
	ScalarFloat
	// ScalarString: Str holds its bytes (a slice of the input, UTF-8 not
	// checked).
	ScalarString
)

// Scalar is one value of a flat msgpack object read by [ScanScalars].
type Scalar struct {
	Kind  ScalarKind
	Bool  bool
	Uint  uint64
	Int   int64
	Float float64
	Str   []byte
}

// ScanScalars reads b as one msgpack map of string keys and scalar values
// (bool, integer, float64, string) and calls f with each entry in order,
// key and string values sliced from b. It reports whether b was such a
// map and f accepted every entry: it stops with false at the first entry f
// refuses, and at anything else (nil, a float32, whose JSON reads back as
// another float64, an array, a map, a type JSON cannot hold, a NaN, an
// infinity, truncated or trailing data). An empty b is an empty map.
//
// It is the fast path of a worker's typed tool arguments, whose fields
// are scalars: what it refuses goes the general way ([MsgpackValue], the
// input schema, encoding/json), which words the error.
func ScanScalars(b []byte, f func(key []byte, v Scalar) bool) bool {
	if len(b) == 0 {
		return true
	}
	m := mpReader{in: b}
	k, n, err := m.head()
	if err != nil || k != headMap || n > uint64(len(b))/2 {
		return false
	}
	for range n {
		klen, err := m.keyLen()
		if err != nil {
			return false
		}
		key, ok := m.take(klen)
		if !ok {
			return false
		}
		k, u, err := m.head()
		if err != nil {
			return false
		}
		var v Scalar
		switch k {
		case headFalse, headTrue:
			v = Scalar{Kind: ScalarBool, Bool: k == headTrue}
		case headUint:
			v = Scalar{Kind: ScalarUint, Uint: u}
		case headInt:
			if i := int64(u); i < 0 {
				v = Scalar{Kind: ScalarInt, Int: i}
			} else { // a signed encoding of a non-negative integer
				v = Scalar{Kind: ScalarUint, Uint: u}
			}
		case headFloat64:
			fl := math.Float64frombits(u)
			if math.IsNaN(fl) || math.IsInf(fl, 0) {
				return false
			}
			v = Scalar{Kind: ScalarFloat, Float: fl}
		case headStr:
			s, ok := m.take(u)
			if !ok {
				return false
			}
			v = Scalar{Kind: ScalarString, Str: s}
		default:
			return false
		}
		if !f(key, v) {
			return false
		}
	}
	return m.pos == len(b)
}
