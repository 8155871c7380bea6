//go:build !unix

package gateway

// defaultMaxConns is Config.MaxConns's default where the open-file limit
// is unknown.
func defaultMaxConns() int { return 10_000 }
