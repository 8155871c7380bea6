// Package auth decides who makes a request to an MCP endpoint, from its
// headers alone, before its body is read.
//
// An [Authenticator] returns the request's principal, or refuses it. Two
// are provided: [JWT] makes the endpoint an OAuth 2.1 resource server,
// validating bearer JWTs against the authorization server's key set
// (issuer, audience, expiry, scopes; tokens validated once are cached),
// and [Header] trusts the header an authenticating proxy in front sets.
//
// # Refusals
//
// [Refuse] answers a refusal as RFC 6750 §3 asks: the HTTP status of the
// [Error], a WWW-Authenticate Bearer challenge naming the scopes required
// and the protected resource metadata (RFC 9728 §5.1), and an OAuth-style
// JSON body, {"error": code, "error_description": text}. The MCP
// authorization specification leaves the body unspecified; this is the
// body the official TypeScript SDK's bearer middleware sends, and not a
// JSON-RPC error: the request was never read as one. An authenticator that
// cannot decide (its key source is unreachable) is answered 503 with
// Retry-After.
//
// # Protected resource metadata
//
// [NewMetadata] checks a [ResourceMetadata] and builds the RFC 9728
// document; the [Metadata] serves it at [MetadataPath] and at
// MetadataPath followed by the resource's path, and gives the URL that
// challenges name.
//
// # Principals
//
// A server stores the authenticated principal in the request's context
// with [WithPrincipal] and reads it back with [Principal].
package auth
