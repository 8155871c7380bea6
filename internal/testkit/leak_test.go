package testkit_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests and
// their cleanup (docs/testing.md).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
