// Package itest holds mcpstream's end-to-end tests: the real mcpstream
// binary and in-process stacks on an embedded JetStream, driven over real
// HTTP on loopback by the official go-sdk MCP client, mark3labs/mcp-go and
// hand-made requests for the error paths.
package itest
