package workers_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestMain fails the package when a goroutine outlives its tests and
// their cleanup (docs/testing.md). Its tests kill replicas' connections
// while they work, which can leave nats.go's one goroutine behind
// (testkit.NATSCloseRace).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testkit.NATSCloseRace()) }
