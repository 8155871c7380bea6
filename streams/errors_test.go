package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

// A stream at its limits with Discard: New refuses a publish with
// ErrCodeStoreFailed: IsStoreFailed tells it, and it is not retried. What a
// cluster answers while it elects a leader (503), no responders and a
// timeout are.
func TestRetryableAndStoreFailed(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "FULL", Subjects: []string{"full.>"}, MaxMsgs: 1, Discard: jetstream.DiscardNew,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "full.a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	_, err := js.Publish(ctx, "full.b", []byte("2"))
	if !streams.IsStoreFailed(err) || streams.Retryable(err) {
		t.Errorf("publish to a full stream: %v; IsStoreFailed %v, Retryable %v, want true, false", err, streams.IsStoreFailed(err), streams.Retryable(err))
	}
	unavailable := &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	inProcess := &jetstream.APIError{Code: 409, ErrorCode: streams.ErrCodeDuplicateInProcess, Description: "duplicate message id is in process"}
	for _, err := range []error{fmt.Errorf("publishing: %w", unavailable), inProcess, nats.ErrNoResponders, nats.ErrTimeout,
		jetstream.ErrNoStreamResponse, nats.ErrConnectionReconnecting, context.DeadlineExceeded} {
		if !streams.Retryable(err) || streams.IsStoreFailed(err) {
			t.Errorf("%v: Retryable %v, IsStoreFailed %v, want true, false", err, streams.Retryable(err), streams.IsStoreFailed(err))
		}
	}
	for _, err := range []error{errors.New("other"), &jetstream.APIError{Code: 400, ErrorCode: 10054}, &jetstream.APIError{Code: 409, ErrorCode: 10071}, nil} {
		if streams.Retryable(err) {
			t.Errorf("%v is retried", err)
		}
	}
}
