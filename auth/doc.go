// Package auth decides who makes a request to an MCP endpoint, from its
// headers alone, before its body is read.
//
// An [Authenticator] returns the request's principal, or refuses it. Three
// are provided: [JWT] makes the endpoint an OAuth 2.1 resource server,
// validating bearer JWTs against the signing keys of the authorization
// server's key set (issuer, audience, expiry, scopes; tokens validated
// once are cached),
// [APIKeys] accepts API keys presented as bearer tokens, for deployments
// without an authorization server, and [Header] trusts the header an
// authenticating proxy in front sets.
//
// # API keys
//
// A key file holds one key a line: its principal, the hex SHA-256 of the
// key (never the key), and the scopes it grants, separated by spaces;
// blank lines and lines starting with # are skipped, and the two-field
// lines of older files (no scope) still parse ([ParseAPIKeys], [APIKey]).
// [GenerateAPIKey] makes a key: "mcps_" and 256 random bits.
// [WatchAPIKeys] reads the file and polls it every second, reading it
// again when it changed, so that a revoked key is refused within about a
// second without a restart; a file that fails to parse then keeps the keys
// held and logs an error (never a key). `mcpstream apikey` creates,
// revokes and lists the keys of a file.
//
// # Scopes
//
// One rule decides whether a request has the scopes it needs, whatever
// authenticated it: a [JWT] grants the scopes of its token's scope and scp
// claims, an API key those of its line in the key file, and each must
// grant every required scope ([JWTOptions].RequiredScopes,
// [APIKeyOptions].RequiredScopes), compared as exact strings. A request
// lacking one is refused 403 insufficient_scope, and every refusal's
// challenge names the required scopes. Scopes decide admission only: they
// are not carried past authentication (the principal is, in the request's
// context and in each envelope).
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
