package auth

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// scopeRule is the one rule deciding whether the scopes a request was
// granted suffice, applied alike by every authenticator that knows them:
// a [JWT] to the scopes of its token's scope and scp claims, [APIKeys] to
// the scopes its key file gives the key. The request must hold every
// required scope, compared as exact strings (a scope is not a prefix of
// another); one lacking a scope is refused 403 insufficient_scope, and
// every refusal's challenge names the required scopes. The zero rule
// requires nothing.
type scopeRule struct {
	required  []string
	challenge string // required, space-separated, for Error.Scope
}

// newScopeRule returns the rule requiring every scope of required. It
// returns an error naming the first that is not an RFC 6749 scope token.
func newScopeRule(required []string) (scopeRule, error) {
	for _, s := range required {
		if err := CheckScope(s); err != nil {
			return scopeRule{}, fmt.Errorf("auth: required scope %q: %w", s, err)
		}
	}
	return scopeRule{required: slices.Clone(required), challenge: strings.Join(required, " ")}, nil
}

// check returns nil when granted holds every required scope, else a 403
// insufficient_scope *Error saying what (a "token" or an "API key") lacks
// one.
func (r scopeRule) check(granted []string, what string) *Error {
	for _, s := range r.required {
		if !slices.Contains(granted, s) {
			return &Error{Status: http.StatusForbidden, Code: ErrCodeInsufficientScope,
				Description: what + " lacks a required scope", Scope: r.challenge}
		}
	}
	return nil
}

// CheckScope returns an error unless s is an RFC 6749 §3.3 scope token:
// one or more printable ASCII characters other than space, '"' and '\'.
// The error does not quote s.
func CheckScope(s string) error {
	if s == "" {
		return errors.New("an empty scope")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return errors.New("not a scope token (printable ASCII but space, '\"' and '\\')")
		}
	}
	return nil
}
