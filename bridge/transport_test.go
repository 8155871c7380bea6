package bridge_test

import (
	"io"
	"net/http"
	"sync"
)

// watchedTransport is a real HTTP transport whose exchanges a test
// watches: before sees each request as it is about to go (and may hold
// it, as a slow network would), after its response or error, and over
// the end of the exchange (the round trip failed, or the bridge closed
// the response's body).
type watchedTransport struct {
	base   *http.Transport
	before func(*http.Request)
	after  func(*http.Request, *http.Response, error)
	over   func(*http.Request)
}

func (w *watchedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if w.before != nil {
		w.before(r)
	}
	resp, err := w.base.RoundTrip(r)
	if w.after != nil {
		w.after(r, resp, err)
	}
	if err != nil {
		if w.over != nil {
			w.over(r)
		}
		return nil, err
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, closed: func() {
		if w.over != nil {
			w.over(r)
		}
	}}
	return resp, nil
}

// watchedBody calls closed once, when it is first closed.
type watchedBody struct {
	io.ReadCloser
	once   sync.Once
	closed func()
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.closed)
	return err
}

// bodyOf returns the body of a request about to go, leaving it to be
// sent.
func bodyOf(r *http.Request) []byte {
	if r.GetBody == nil {
		return nil
	}
	rc, err := r.GetBody()
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}
