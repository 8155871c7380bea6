package streams

import (
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// Recorded is one request as a request stream recorded it.
type Recorded struct {
	// Stream and Seq name the message: partition stream and stream
	// sequence.
	Stream string
	Seq    uint64
	// Time is when the stream stored it.
	Time time.Time
	// Group is the worker group its subject names.
	Group    string
	Envelope *schema.Envelope
}
