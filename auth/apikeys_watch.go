package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// APIKeyOptions configure [WatchAPIKeys].
type APIKeyOptions struct {
	// RequiredScopes must all be granted by a key (its scopes in the key
	// file). A key lacking one is answered 403 insufficient_scope, as a
	// JWT lacking one is: the same rule decides both.
	RequiredScopes []string
	// Interval is how often the file is checked for a change (default
	// 1s).
	Interval time.Duration
	// Logger receives reloads and reloads that failed (default
	// slog.Default()). It is never given a key: a file's errors name a
	// line and a field, not what the line holds.
	Logger *slog.Logger
}

// WatchAPIKeys reads the key file at path (the format of [ParseAPIKeys])
// and returns an APIKeys accepting its keys. Until ctx ends or Close is
// called, a goroutine checks the file every Interval and reads it again
// when it changed, so that a key added is accepted, and a key revoked
// refused, about Interval later, without a restart.
//
// It polls the file's identity (device and inode), modification time and
// size instead of asking the kernel for change events (fsnotify): a stat a
// second costs nothing and needs no dependency, and it sees every way a key
// file gets replaced: a rename over it (what `mcpstream apikey` does, and
// what an inotify watch on the file itself loses, as it follows the old
// inode), a Kubernetes Secret or ConfigMap volume swapping the symlink of
// its directory, a network file system that sends no events. An event
// watcher needs a watch on the directory and per-platform care to see as
// much, for a latency of milliseconds where a second or two is asked.
//
// A reload that fails (the file is gone, unreadable, or does not parse)
// keeps the keys held and logs an error, once per change of the file. One
// that parses replaces every key; one with no key left refuses every
// request (its last key was revoked), and logs a warning.
//
// It returns an error for a required scope that is not a scope token, or
// a file that cannot be read, does not parse (naming the line) or holds
// no key.
func WatchAPIKeys(ctx context.Context, path string, opts APIKeyOptions) (*APIKeys, error) {
	scopes, err := newScopeRule(opts.RequiredScopes)
	if err != nil {
		return nil, err
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	keys, stamp, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: reading API keys: none", path)
	}
	a := newAPIKeys(keys, scopes)
	wctx, cancel := context.WithCancel(ctx)
	w := &keyWatcher{path: path, interval: opts.Interval, log: log, cancel: cancel, done: make(chan struct{})}
	a.watcher = w
	go w.run(wctx, a, stamp)
	return a, nil
}

// keyWatcher reloads an APIKeys' file when it changes; its goroutine is
// owned by the context WatchAPIKeys was given, and by close.
type keyWatcher struct {
	path     string
	interval time.Duration
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{} // closed when run returns
}

// close stops the goroutine and waits for it.
func (w *keyWatcher) close() {
	w.cancel()
	<-w.done
}

// run checks the file every interval until ctx ends; last is the state of
// the file whose keys a holds.
func (w *keyWatcher) run(ctx context.Context, a *APIKeys, last fileStamp) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last = w.reload(a, last)
	}
}

// reload reads the file again when its state differs from last, replaces
// a's keys when it parses, and returns the state now seen.
func (w *keyWatcher) reload(a *APIKeys, last fileStamp) fileStamp {
	fi, err := os.Stat(w.path)
	if now := newFileStamp(fi, err); now.same(last) {
		return last
	}
	keys, now, err := readKeyFile(w.path)
	if err != nil {
		w.log.Error("reloading API keys failed; keeping the keys held", "file", w.path, "keys", a.Len(), "err", err)
		return now
	}
	a.keys.Store(newKeyIndex(keys))
	if len(keys) == 0 {
		w.log.Warn("API keys reloaded: the file holds no key, every request is refused", "file", w.path)
	} else {
		w.log.Info("API keys reloaded", "file", w.path, "keys", len(keys))
	}
	return now
}

// readKeyFile reads and parses the key file at path, and returns its
// keys and the state of the file they were read from. It returns an error
// naming the file when it cannot be read or does not parse; the state is
// then that of the failure, so that it is reported once.
func readKeyFile(path string) ([]APIKey, fileStamp, error) {
	f, err := os.Open(path)
	if err != nil {
		err = fmt.Errorf("opening API keys: %w", err)
		return nil, newFileStamp(nil, err), err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		err = fmt.Errorf("opening API keys: %w", err)
		return nil, newFileStamp(nil, err), err
	}
	stamp := newFileStamp(fi, nil)
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, stamp, fmt.Errorf("reading API keys %s: %w", path, err)
	}
	keys, err := ParseAPIKeys(bytes.NewReader(b))
	if err != nil {
		return nil, stamp, fmt.Errorf("%s: %w", path, err)
	}
	return keys, stamp, nil
}

// fileStamp is what tells that a file changed: its identity, modification
// time and size, or why it could not be looked at.
type fileStamp struct {
	info os.FileInfo // nil when the file could not be looked at
	err  string
}

// newFileStamp is the state of a file fi describes, or of a failure to
// look at it: the failure's cause without its operation, so that a stat
// and an open failing alike are the same state.
func newFileStamp(fi os.FileInfo, err error) fileStamp {
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fileStamp{err: err.Error()}
	}
	return fileStamp{info: fi}
}

// same reports whether s and o describe the same file in the same state,
// or the same failure.
func (s fileStamp) same(o fileStamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == nil && o.info == nil && s.err == o.err
	}
	return os.SameFile(s.info, o.info) && s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size()
}
