package schema

// Hand-written msgpack encoders for the two structs on the hot path. They
// write the same maps (keys, omitempty rules) as the msgpack struct tags
// describe, so the library decodes them; TestEncodersMatchLibrary keeps the
// two in step.

func appendKey(dst []byte, k string) []byte { return append(append(dst, 0xa0|byte(len(k))), k...) }

func appendStrField(dst []byte, k, v string) []byte {
	return appendMsgpackStr(appendKey(dst, k), []byte(v))
}

// appendEnvelope writes e as a msgpack map.
func appendEnvelope(dst []byte, e *Envelope) []byte {
	n := 5 // v k m d t
	for _, s := range []string{e.Name, e.Session, e.Principal, e.Revision} {
		if s != "" {
			n++
		}
	}
	if len(e.Params) > 0 {
		n++
	}
	if e.Attempt != 0 {
		n++
	}
	if len(e.ProgressToken) > 0 {
		n++
	}
	if e.RequestID != "" {
		n++
	}
	for _, b := range [][]byte{e.ClientCaps, e.InputResponses} {
		if len(b) > 0 {
			n++
		}
	}
	if e.RequestState != "" {
		n++
	}
	for _, s := range []string{e.TaskID, e.TraceParent, e.TraceState, e.Baggage} {
		if s != "" {
			n++
		}
	}
	if n <= 15 {
		dst = append(dst, 0x80|byte(n))
	} else { // every field set: past a fixmap's 15 entries
		dst = append(dst, 0xde, 0, byte(n))
	}
	dst = appendMsgpackInt(appendKey(dst, "v"), int64(e.V))
	dst = appendStrField(dst, "k", e.Key)
	dst = appendStrField(dst, "m", e.Method)
	if e.Name != "" {
		dst = appendStrField(dst, "n", e.Name)
	}
	if len(e.Params) > 0 {
		dst = append(appendKey(dst, "p"), e.Params...)
	}
	if e.Session != "" {
		dst = appendStrField(dst, "s", e.Session)
	}
	if e.Principal != "" {
		dst = appendStrField(dst, "u", e.Principal)
	}
	if e.Revision != "" {
		dst = appendStrField(dst, "r", e.Revision)
	}
	dst = appendMsgpackInt(appendKey(dst, "d"), e.Deadline)
	if e.Attempt != 0 {
		dst = appendMsgpackUint(appendKey(dst, "a"), uint64(e.Attempt))
	}
	dst = appendStrField(dst, "t", e.ReplyTo)
	if len(e.ProgressToken) > 0 {
		dst = append(appendKey(dst, "g"), e.ProgressToken...)
	}
	if e.RequestID != "" {
		dst = appendStrField(dst, "q", e.RequestID)
	}
	if len(e.ClientCaps) > 0 {
		dst = append(appendKey(dst, "c"), e.ClientCaps...)
	}
	if len(e.InputResponses) > 0 {
		dst = append(appendKey(dst, "x"), e.InputResponses...)
	}
	if e.RequestState != "" {
		dst = appendStrField(dst, "y", e.RequestState)
	}
	if e.TaskID != "" {
		dst = appendStrField(dst, "j", e.TaskID)
	}
	if e.TraceParent != "" {
		dst = appendStrField(dst, "w", e.TraceParent)
	}
	if e.TraceState != "" {
		dst = appendStrField(dst, "z", e.TraceState)
	}
	if e.Baggage != "" {
		dst = appendStrField(dst, "b", e.Baggage)
	}
	return dst
}

// appendReply writes r as a msgpack map.
func appendReply(dst []byte, r *Reply) []byte {
	n := 2 // v k
	if r.Kind != 0 {
		n++
	}
	if len(r.Result) > 0 {
		n++
	}
	if r.Error != nil {
		n++
	}
	if r.Cached {
		n++
	}
	if r.RunNs != 0 {
		n++
	}
	if r.Method != "" {
		n++
	}
	if r.ID != "" {
		n++
	}
	dst = append(dst, 0x80|byte(n))
	dst = appendMsgpackInt(appendKey(dst, "v"), int64(r.V))
	dst = appendStrField(dst, "k", r.Key)
	if r.Kind != 0 {
		dst = appendMsgpackUint(appendKey(dst, "i"), uint64(r.Kind))
	}
	if len(r.Result) > 0 {
		dst = append(appendKey(dst, "r"), r.Result...)
	}
	if r.Error != nil {
		dst = appendKey(dst, "e")
		e := r.Error
		if len(e.Data) > 0 {
			dst = append(dst, 0x83)
		} else {
			dst = append(dst, 0x82)
		}
		dst = appendMsgpackInt(appendKey(dst, "c"), int64(e.Code))
		dst = appendStrField(dst, "m", e.Message)
		if len(e.Data) > 0 {
			dst = appendBin(appendKey(dst, "d"), e.Data)
		}
	}
	if r.Cached {
		dst = append(appendKey(dst, "c"), 0xc3)
	}
	if r.RunNs != 0 {
		dst = appendMsgpackInt(appendKey(dst, "n"), r.RunNs)
	}
	if r.Method != "" {
		dst = appendStrField(dst, "m", r.Method)
	}
	if r.ID != "" {
		dst = appendStrField(dst, "q", r.ID)
	}
	return dst
}

func appendBin(dst, b []byte) []byte {
	switch n := len(b); {
	case n <= 0xff:
		dst = append(dst, 0xc4, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0xc5, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, b...)
}
