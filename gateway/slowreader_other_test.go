//go:build !unix

package gateway_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// unreadAnswer needs socket options set before connecting (unix only).
func unreadAnswer(t *testing.T, _ *testGateway, _ []string, _ *prometheus.Registry) {
	t.Skip("needs SO_RCVBUF before connect")
}

// unreadSmallAnswers needs the same socket options.
func unreadSmallAnswers(t *testing.T, _ *testGateway, _ []string) {
	t.Skip("needs SO_RCVBUF before connect")
}
