package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Authenticator decides who is making a request, from its headers only
// (the body is not read yet). It returns the principal ("" for an
// anonymous request it lets through), or an error refusing the request: an
// *[Error] is answered with its status and a Bearer challenge; any other
// error means the authenticator could not decide (its key source is
// unreachable, say) and is answered 503 with Retry-After (see [Refuse]).
type Authenticator interface {
	Authenticate(r *http.Request) (principal string, err error)
}

// RFC 6750 §3.1 error codes.
const (
	ErrCodeInvalidRequest    = "invalid_request"
	ErrCodeInvalidToken      = "invalid_token"
	ErrCodeInsufficientScope = "insufficient_scope"
)

// Error refuses a request: HTTP 401 for missing, malformed or invalid
// credentials, 403 for a valid token lacking a required scope, 400 for a
// malformed Authorization header.
type Error struct {
	// Status is the HTTP status to answer with.
	Status int
	// Code is the RFC 6750 error code: empty when the request carried no
	// bearer token (the challenge then names no error), else one of
	// ErrCodeInvalidRequest, ErrCodeInvalidToken, ErrCodeInsufficientScope.
	Code string
	// Description is a short text for the client (printable ASCII, no
	// quotes or backslashes).
	Description string
	// Scope, if set, lists the scopes the resource requires,
	// space-separated; it goes into the challenge.
	Scope string
	// Err is the underlying cause, for logs; never sent to the client.
	Err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("auth: %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Challenge is the WWW-Authenticate value for e; metadataURL, if set, is
// the protected resource metadata's URL.
func (e *Error) Challenge(metadataURL string) string {
	var params []string
	if e.Code != "" {
		params = append(params, `error="`+e.Code+`"`)
		if e.Description != "" {
			params = append(params, `error_description="`+quotable(e.Description)+`"`)
		}
	}
	if e.Scope != "" {
		params = append(params, `scope="`+quotable(e.Scope)+`"`)
	}
	if metadataURL != "" {
		params = append(params, `resource_metadata="`+quotable(metadataURL)+`"`)
	}
	if len(params) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(params, ", ")
}

// quotable drops what may not appear in an RFC 6750 quoted value.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// Refuse answers a request an Authenticator refused with err: an *[Error]
// with its status, a Bearer challenge (naming metadataURL, the protected
// resource metadata, when set) and an OAuth-style body; any other error
// with 503, Retry-After and temporarily_unavailable.
func Refuse(w http.ResponseWriter, err error, metadataURL string) {
	var e *Error
	if !errors.As(err, &e) {
		w.Header().Set("Retry-After", "1")
		writeBody(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot authenticate requests now")
		return
	}
	w.Header().Set("WWW-Authenticate", e.Challenge(metadataURL))
	writeBody(w, e.Status, e.Code, e.Description)
}

// writeBody writes an OAuth-style error body.
func writeBody(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Header trusts a header set by an authenticating proxy in front of the
// server (for example X-Auth-Request-User) to name the principal; an
// absent or empty header is the anonymous principal "". It never refuses a
// request. Only use it behind a proxy that sets the header and strips it
// from clients.
type Header struct {
	Name string
}

// Authenticate returns the header's value.
func (h Header) Authenticate(r *http.Request) (string, error) {
	return r.Header.Get(h.Name), nil
}

// bearerToken reads the token of the Authorization header, the only place
// a token is taken from (the MCP authorization specification forbids
// tokens in the query string). No header, or another scheme, is a 401
// naming no error (RFC 6750 §3.1: the client sent no bearer credentials),
// whose description says where the token goes when the query string
// holds an access_token; a malformed Bearer header is a 400
// invalid_request.
func bearerToken(r *http.Request) (string, *Error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		if r.URL != nil && r.URL.Query().Has("access_token") {
			return "", &Error{Status: http.StatusUnauthorized, Description: "a bearer token is required in the Authorization header, never in the query string"}
		}
		return "", &Error{Status: http.StatusUnauthorized, Description: "a bearer token is required"}
	case 1:
	default:
		return "", &Error{Status: http.StatusBadRequest, Code: ErrCodeInvalidRequest, Description: "more than one Authorization header"}
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &Error{Status: http.StatusUnauthorized, Description: "only Bearer credentials are accepted"}
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t,") {
		return "", &Error{Status: http.StatusBadRequest, Code: ErrCodeInvalidRequest, Description: "malformed Bearer credentials"}
	}
	return token, nil
}

// principalKey keys the authenticated principal in a request's context.
type principalKey struct{}

// WithPrincipal returns ctx carrying principal, as an Authenticator found
// it.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// Principal is the principal ctx carries ("" for none).
func Principal(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}
