package streams

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"

	"github.com/mcpstream/mcpstream/schema"
)

// Subject and name prefixes of the topology.
const (
	requestPrefix = "mcp.req."
	replyPrefix   = "mcp.reply."
	dlqPrefix     = "mcp.dlq."
	eventsPrefix  = "mcp.events."
	ssePrefix     = "mcp.sse."
	answerPrefix  = "mcp.answer."
	loadPrefix    = "mcp.load."
	streamPrefix  = "MCP_REQ_"
	consumerPfx   = "grp-"

	// DLQStream holds envelopes that could not be processed.
	DLQStream = "MCP_DLQ"
	// EventsStream holds the events of session event streams.
	EventsStream = "MCP_EVENTS"

	// RegistryBucket holds tool definitions and worker heartbeats.
	RegistryBucket = "mcp_registry"
	// SessionBucket holds session state for session-based revisions.
	SessionBucket = "mcp_sessions"
	// ResultBucket holds recent results by request key, so a redelivered
	// envelope is answered from the store instead of run again.
	ResultBucket = "mcp_results"
	// TaskBucket holds the state of tasks (the tasks extension), so a task
	// outlives the gateway and the worker that started it.
	TaskBucket = "mcp_tasks"
)

// Registry KV key prefixes.
const (
	ToolKeyPrefix      = "tool."
	PromptKeyPrefix    = "prompt."
	ResourceKeyPrefix  = "resource."
	TemplateKeyPrefix  = "template."
	HeartbeatKeyPrefix = "hb."
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidName reports whether s can name a worker group or a gateway: 1 to 64
// letters, digits, '-' or '_' (it becomes one subject token and part of
// consumer and key names).
func ValidName(s string) bool { return nameRE.MatchString(s) }

// CheckName returns an error naming what is wrong with a group or gateway
// name, or nil.
func CheckName(kind, s string) error {
	if !ValidName(s) {
		return fmt.Errorf("invalid %s name %q: want 1-64 of [A-Za-z0-9_-]", kind, s)
	}
	return nil
}

// Partition maps a routing key to a partition in [0, n) with 32-bit FNV-1a.
// It is stable across processes and releases: changing it would split a
// session's requests over two partitions.
func Partition(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// RequestSubjectTemplate is the request subjects' template, as traces name
// their destination (messaging.destination.template).
const RequestSubjectTemplate = requestPrefix + "{group}.{partition}"

// RequestSubject is the subject of a request for group in partition p:
// mcp.req.<group>.<p>.
func RequestSubject(group string, p int) string {
	return requestPrefix + group + "." + strconv.Itoa(p)
}

// ParseRequestSubject returns the group and partition a request subject
// names; ok is false for another subject.
func ParseRequestSubject(subject string) (group string, partition int, ok bool) {
	rest, found := strings.CutPrefix(subject, requestPrefix)
	if !found {
		return "", 0, false
	}
	group, p, found := strings.Cut(rest, ".")
	n, err := strconv.Atoi(p)
	if !found || err != nil || n < 0 || !ValidName(group) {
		return "", 0, false
	}
	return group, n, true
}

// StreamName is the name of the request stream of partition p: MCP_REQ_<p>.
func StreamName(p int) string { return streamPrefix + strconv.Itoa(p) }

// LoadSubject is the core NATS subject of group's load reports
// (schema.LoadReport), from its replicas and from the gateways.
func LoadSubject(group string) string { return loadPrefix + group }

// LoadSubjects matches every group's load subject.
const LoadSubjects = loadPrefix + "*"

// LeaderElectedSubject is the subject of the advisories nats-server sends
// when partition p's request stream gets a new leader. A gateway listens to
// them to publish again, at once, what it published while the stream had
// none.
func LeaderElectedSubject(p int) string { return leaderElectedPrefix + StreamName(p) }

const leaderElectedPrefix = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."

// ConsumerLeaderElectedSubject is the subject of the advisories nats-server
// sends when group's consumer of partition p gets a new leader. A worker
// listens to them to pull again, at once, from the new leader.
func ConsumerLeaderElectedSubject(group string, p int) string {
	return consumerElectedPrefix + StreamName(p) + "." + ConsumerName(group)
}

const consumerElectedPrefix = "$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED."

// partitionOf is the partition of request stream name (-1 for another
// name).
func partitionOf(name string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(name, streamPrefix))
	if err != nil || !strings.HasPrefix(name, streamPrefix) {
		return -1
	}
	return n
}

// streamSubjects are the subjects partition p's stream captures.
func streamSubjects(p int) []string { return []string{requestPrefix + "*." + strconv.Itoa(p)} }

// ConsumerName is the durable pull consumer shared by every replica of group
// on each partition stream.
func ConsumerName(group string) string { return consumerPfx + group }

// ReplySubject is the core NATS subject on which gateway id receives replies.
func ReplySubject(gatewayID string) string { return replyPrefix + gatewayID }

// PubAckPrefix starts the reply subject of every request gateway id
// publishes: the stream's acknowledgement of request key comes back to
// PubAckPrefix(id) + key, so one wildcard subscription serves them all.
func PubAckPrefix(gatewayID string) string { return replyPrefix + gatewayID + ".ack." }

// DLQSubject is where group's poison envelopes go.
func DLQSubject(group string) string { return dlqPrefix + group }

// ToolKey is the registry key of a tool. Tool names may hold characters KV
// keys cannot, so the name is base64url-encoded; the value carries the name.
func ToolKey(name string) string {
	return ToolKeyPrefix + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// PromptKey is the registry key of a prompt (base64url, as for tools).
func PromptKey(name string) string {
	return PromptKeyPrefix + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// ResourceKey is the registry key of a resource (its URI, base64url).
func ResourceKey(uri string) string {
	return ResourceKeyPrefix + base64.RawURLEncoding.EncodeToString([]byte(uri))
}

// TemplateKey is the registry key of a resource template.
func TemplateKey(uriTemplate string) string {
	return TemplateKeyPrefix + base64.RawURLEncoding.EncodeToString([]byte(uriTemplate))
}

// HeartbeatKey is the registry key of one worker instance's heartbeat.
func HeartbeatKey(group, instance string) string {
	return HeartbeatKeyPrefix + group + "." + instance
}

// Subjects of the events stream: list changes, and resource updates by
// URI.
const (
	EventsToolsSubject     = eventsPrefix + "tools"
	EventsPromptsSubject   = eventsPrefix + "prompts"
	EventsResourcesSubject = eventsPrefix + "resources"
	eventsResourcePrefix   = eventsPrefix + "res."
)

// ResourceEventSubject is the events subject of updates to uri.
func ResourceEventSubject(uri string) string {
	return eventsResourcePrefix + base64.RawURLEncoding.EncodeToString([]byte(uri))
}

// ResourceEventURI is the URI of a resource events subject; ok is false for
// another subject.
func ResourceEventURI(subject string) (uri string, ok bool) {
	enc, found := strings.CutPrefix(subject, eventsResourcePrefix)
	if !found {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	return string(b), err == nil
}

// SSESubject is the core NATS subject on which the messages for a session
// of the 2024-11-05 HTTP+SSE transport travel to the gateway holding its
// stream.
func SSESubject(session string) string { return ssePrefix + session }

// A worker's request to the client travels as a Reply of kind ReplyRequest
// to the gateway holding the client, which sends it on as a JSON-RPC request
// whose id is the Reply's ID. The client may answer on any gateway; that
// gateway finds where the worker waits from the id alone: id
// "mcps-<32 hex>" is answered on the core NATS subject
// "mcp.answer.<32 hex>". The 128 random bits make the subject unguessable,
// and the answer carries the session, which the worker checks.
const (
	clientRequestPrefix = "mcps-"
	answerTokenLen      = 32
)

// NewClientRequest returns a fresh JSON-RPC id (a string) for a request to
// the client, and the subject its answer arrives on.
func NewClientRequest() (id, subject string) {
	var b [answerTokenLen / 2]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	return clientRequestPrefix + tok, answerPrefix + tok
}

// AnswerSubject is the subject on which the answer to a request with id
// (raw JSON, from the client's response) is awaited; ok is false when id is
// not one that [NewClientRequest] made.
func AnswerSubject(id schema.ID) (subject string, ok bool) {
	if len(id) != 2+len(clientRequestPrefix)+answerTokenLen || id[0] != '"' || id[len(id)-1] != '"' {
		return "", false
	}
	s := string(id[1 : len(id)-1])
	if s[:len(clientRequestPrefix)] != clientRequestPrefix {
		return "", false
	}
	tok := s[len(clientRequestPrefix):]
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return answerPrefix + tok, true
}

// CancelSubject is the core NATS subject every worker listens on for
// cancellations ([schema.Cancel]); any gateway can send one.
const CancelSubject = "mcp.cancel"

// ResultKey maps a request key to its key in the result bucket; keys with
// characters a KV key cannot hold are hashed.
func ResultKey(key string) string {
	ok := len(key) > 0 && len(key) <= 128
	for i := 0; ok && i < len(key); i++ {
		c := key[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '='
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "h-" + hex.EncodeToString(sum[:16])
}

// ClaimKey is the key, in the result bucket, of the claim of the replica
// that runs request key: held, with a short TTL it renews, while the
// handler runs, then marked done for as long as results are kept, so
// that a copy of the request delivered elsewhere meanwhile (the server
// redelivers what a busy replica holds unstarted for AckWait) is not run
// again.
func ClaimKey(key string) string { return "claim." + ResultKey(key) }

// ClaimSubject is the subject that stores the claim of request key.
func ClaimSubject(key string) string { return "$KV." + ResultBucket + "." + ClaimKey(key) }

// ResultSubject is the subject that stores the result of request key in
// the result bucket (a KV put, published asynchronously).
func ResultSubject(key string) string { return "$KV." + ResultBucket + "." + ResultKey(key) }

// RegistrySubject is the subject that stores registry key in the registry
// bucket (a KV put, published with a per-message TTL).
func RegistrySubject(key string) string { return "$KV." + RegistryBucket + "." + key }
