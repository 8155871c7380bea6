package streams

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes mcpstream acts on (nats-server's
// jetstream_errors_generated.go names them; nats.go does not export these).
const (
	// ErrCodeStoreFailed is a stream's refusal to store a message: with
	// Discard: New, a stream at its limits (HTTP-style code 503).
	ErrCodeStoreFailed jetstream.ErrorCode = 10077
	// ErrCodeDuplicateInProcess is a stream's answer to a publish whose
	// message id it is storing already (HTTP-style code 409): a copy sent
	// again while the first one is still being replicated, as around a
	// leader change. The next copy is acknowledged as a duplicate.
	ErrCodeDuplicateInProcess jetstream.ErrorCode = 10158
	// ErrCodeNoPeers is a cluster's refusal to place a stream or bucket
	// (HTTP-style code 400, "no suitable peers for placement"): fewer
	// nodes up, as its meta leader sees them, than the replicas asked for.
	// A cluster whose nodes have just started reports it until the meta
	// leader has heard from them all, and one with a node down until the
	// node is back.
	ErrCodeNoPeers jetstream.ErrorCode = 10005
)

// IsNoPeers reports whether err is a cluster's refusal to place a stream
// for want of nodes up ([ErrCodeNoPeers]): worth trying again while nodes
// are starting, and a configuration error when it lasts.
func IsNoPeers(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == ErrCodeNoPeers
}

// IsStoreFailed reports whether err is a stream's refusal to store a
// publish ([ErrCodeStoreFailed]): trying again at once would fail the same
// way, so the request is answered as an overload.
func IsStoreFailed(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == ErrCodeStoreFailed
}

// Retryable reports whether a publish or a bucket operation that failed
// with err may succeed if tried again: no stream leader answered in time or
// one said it is unavailable for now (503, but not a failed store), or it
// is storing the same message id already ([ErrCodeDuplicateInProcess]),
// or the connection is reconnecting. A leader election after a node loss takes
// seconds; retry with backoff within the request's deadline.
func Retryable(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		(errors.As(err, &apiErr) && (apiErr.Code == 503 && !IsStoreFailed(err) || apiErr.ErrorCode == ErrCodeDuplicateInProcess))
}
