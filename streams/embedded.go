package streams

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configure an in-process nats-server with JetStream.
type EmbeddedOptions struct {
	// Dir is the JetStream store directory (required).
	Dir string
	// Listen is "host:port" to accept NATS clients over TCP (port 0 picks a
	// free port); empty serves in-process connections only.
	Listen string
	// Name is the server name (default "mcpstream-dev").
	Name string
	// MaxMemory bounds JetStream memory storage (default 1 GiB).
	MaxMemory int64
}

// Embedded is a running in-process nats-server.
type Embedded struct {
	srv *server.Server
	tcp bool
}

// StartEmbedded starts a nats-server with JetStream on disk in o.Dir and waits
// until it accepts connections. It returns an error for a bad Listen address
// or a server that does not become ready within 10 seconds.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	if o.Dir == "" {
		return nil, errors.New("embedded nats: store directory is required")
	}
	opts := &server.Options{
		ServerName:         o.Name,
		JetStream:          true,
		StoreDir:           o.Dir,
		JetStreamMaxMemory: o.MaxMemory,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         16 << 20,
	}
	if opts.ServerName == "" {
		opts.ServerName = "mcpstream-dev"
	}
	if opts.JetStreamMaxMemory == 0 {
		opts.JetStreamMaxMemory = 1 << 30
	}
	if o.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return &Embedded{srv: srv, tcp: o.Listen != ""}, nil
}

// Server returns the underlying nats-server.
func (e *Embedded) Server() *server.Server { return e.srv }

// ClientURL is the nats:// URL of the TCP listener, or "" without one.
func (e *Embedded) ClientURL() string {
	if !e.tcp {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect opens a client connection to the server, in-process (no TCP).
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(e.srv), nats.Name("mcpstream-embedded")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to embedded nats: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
