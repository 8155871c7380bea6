package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Environment variables holding NATS secrets. They are read from the
// environment only, never from flags, which any user can see in ps.
const (
	envNATSUser     = "MCPSTREAM_NATS_USER"
	envNATSPassword = "MCPSTREAM_NATS_PASSWORD"
	envNATSToken    = "MCPSTREAM_NATS_TOKEN"
)

// natsFlags are how a command reaches NATS: the URLs, the credentials and
// TLS. Every command that connects (gateway, worker, provision, replay)
// registers them; connect uses them.
type natsFlags struct {
	url     string
	creds   string
	nkey    string
	tlsCA   string
	tlsCert string
	tlsKey  string
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats", nats.DefaultURL, "NATS server URL(s), comma-separated (tls:// for TLS)")
	fs.StringVar(&f.creds, "nats-creds", "", "authenticate with this NATS credentials file (.creds: a user JWT and its nkey seed; default none)")
	fs.StringVar(&f.nkey, "nats-nkey", "", "authenticate with the nkey seed in this file (default none)")
	fs.StringVar(&f.tlsCA, "nats-tls-ca", "", "verify the NATS server's certificate with the CA certificates in this PEM file, and connect with TLS (default the system's roots, and TLS only for tls:// URLs)")
	fs.StringVar(&f.tlsCert, "nats-tls-cert", "", "present this PEM client certificate to the NATS server, with --nats-tls-key (default none)")
	fs.StringVar(&f.tlsKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert (default none)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), natsEnvUsage)
	}
}

// natsEnvUsage is the documentation of the secrets read from the
// environment, appended to a command's help.
const natsEnvUsage = `
NATS user and password, or token, are read from the environment only:
  ` + envNATSUser + `, ` + envNATSPassword + `  user and password (default none)
  ` + envNATSToken + `  token (default none)
`

// options returns the nats.Go options of the flags and of the secrets in
// the environment (read with getenv). It returns an error for
// credentials given two ways (a creds file, an nkey, a user or a token:
// at most one), a password without a user, a TLS certificate without its
// key, or an nkey seed file that cannot be read; none holds a secret.
func (f *natsFlags) options(getenv func(string) string) ([]nats.Option, error) {
	var opts []nats.Option
	user, pass, token := getenv(envNATSUser), getenv(envNATSPassword), getenv(envNATSToken)
	n := 0
	for _, set := range []bool{f.creds != "", f.nkey != "", user != "", token != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("NATS credentials given more than one way: use one of --nats-creds, --nats-nkey, " +
			envNATSUser + " (with " + envNATSPassword + ") or " + envNATSToken)
	}
	switch {
	case f.creds != "":
		opts = append(opts, nats.UserCredentials(f.creds))
	case f.nkey != "":
		o, err := nats.NkeyOptionFromSeed(f.nkey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", f.nkey, err)
		}
		opts = append(opts, o)
	case user != "":
		opts = append(opts, nats.UserInfo(user, pass))
	case pass != "":
		return nil, errors.New(envNATSPassword + " is set without " + envNATSUser)
	case token != "":
		opts = append(opts, nats.Token(token))
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if f.tlsCA != "" {
		opts = append(opts, nats.RootCAs(f.tlsCA))
	}
	if f.tlsCert != "" {
		opts = append(opts, nats.ClientCert(f.tlsCert, f.tlsKey))
	}
	return opts, nil
}

// connect dials the NATS servers of f as name, with reply inboxes under
// inbox (streams.InboxPrefix of the command's role; "" for NATS's
// default), and reconnects that never give up: a gateway or worker
// outlives a broker restart. nats.go still closes the connection for
// good when two reconnects in a row fail authorization the same way (a
// rotated password or revoked user); a command that serves sees it with
// watchClosed and ends, for a restart to read the secrets again. getenv reads the secrets of the environment.
// Its errors name the servers without passwords in their URLs, and never
// hold a secret.
func connect(f natsFlags, name, inbox string, getenv func(string) string, log *slog.Logger) (*nats.Conn, error) {
	opts, err := f.options(getenv)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("nats", "err", err)
		}),
	)
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", redactURLs(f.url), err)
	}
	return nc, nil
}

// redactURLs returns the comma-separated URLs of servers with their
// passwords (or tokens) replaced by "xxxxx".
func redactURLs(servers string) string {
	var out []string
	for _, s := range strings.Split(servers, ",") {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		switch {
		case err != nil && strings.Contains(s, "@"):
			s = "(a URL that cannot be parsed)"
		case err == nil && u.User != nil:
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx")
			}
			s = u.String()
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// watchClosed sends on lost, without waiting, an error naming why when
// nats.go closes nc (its last error, such as an authorization violation).
// A command that serves selects on lost while it serves: a connection it
// closes itself on its way out closes when nothing listens any more.
func watchClosed(nc *nats.Conn, lost chan<- error) {
	nc.SetClosedHandler(func(c *nats.Conn) {
		err := errors.New("NATS connection closed")
		if last := c.LastError(); last != nil {
			err = fmt.Errorf("NATS connection closed: %w", last)
		}
		select {
		case lost <- err:
		default:
		}
	})
}

// closedCheck is a liveness check (/healthz of --metrics-addr): an error
// once any of conns() is closed.
func closedCheck(conns func() []*nats.Conn) func() error {
	return func() error {
		for _, nc := range conns() {
			if nc.IsClosed() {
				return errors.New("nats connection closed")
			}
		}
		return nil
	}
}
