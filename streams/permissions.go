package streams

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Role is what a NATS user of mcpstream does; [Permissions] gives each the
// narrowest NATS permissions it works with.
type Role int

// The roles of mcpstream's NATS users.
const (
	// RoleGateway serves MCP clients: it publishes requests into every
	// group's request subjects and receives their replies.
	RoleGateway Role = iota + 1
	// RoleWorker is a replica of one worker group: it pulls only from the
	// group's consumer (grp-<group>) and answers gateways.
	RoleWorker
	// RoleProvisioner creates and updates the streams and buckets
	// (`mcpstream provision`).
	RoleProvisioner
	// RoleReplay reads the request streams, the registry and the groups'
	// record streams back (`mcpstream replay`).
	RoleReplay
)

// String is the role's name: gateway, worker, provision or replay.
func (r Role) String() string {
	switch r {
	case RoleGateway:
		return "gateway"
	case RoleWorker:
		return "worker"
	case RoleProvisioner:
		return "provision"
	case RoleReplay:
		return "replay"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// Permission is a NATS user's allow lists: the subjects it may publish to
// and subscribe to; everything else is denied. PublishDeny takes
// subjects back out of Publish (the server's deny wins over allow).
type Permission struct {
	Publish     []string
	Subscribe   []string
	PublishDeny []string
}

// InboxPrefix is the prefix of the reply inboxes a connection of role
// (and, for [RoleWorker], group) uses: _INBOX.<role> or
// _INBOX.worker-<group>. Requests, JetStream API calls, pulled messages
// and KV watches deliver there, so a user that may subscribe only to its
// own prefix cannot read what another role's inboxes receive. The prefix
// is under _INBOX, so users allowed _INBOX.> work too. Set it with
// nats.CustomInboxPrefix.
func InboxPrefix(role Role, group string) string {
	if role == RoleWorker {
		return "_INBOX.worker-" + group
	}
	return "_INBOX." + role.String()
}

// PermissionOptions narrow [Permissions].
type PermissionOptions struct {
	// Group is the worker group of a [RoleWorker] user (required for it,
	// ignored for other roles).
	Group string
	// GatewayID is the id of a [RoleGateway] user's gateway (its --id):
	// the user then receives only that gateway's replies. Empty (the
	// default) allows any gateway id, for gateways with random ids that
	// share one user.
	GatewayID string
	// Partitions is the number of request streams (default 4, as
	// [Topology]): NATS wildcards match whole tokens only, so the request
	// streams' API subjects are listed one by one.
	Partitions int
	// Groups are the worker groups whose record streams a [RoleReplay]
	// user may read (default none).
	Groups []string
}

// Buckets' and streams' JetStream API subjects.
const (
	jsAPI = "$JS.API."
	kvPfx = "KV_"
)

// kvRead is what reading bucket takes: opening it (stream info) and
// direct gets of its keys.
func kvRead(bucket string) []string {
	return []string{jsAPI + "STREAM.INFO." + kvPfx + bucket, jsAPI + "DIRECT.GET." + kvPfx + bucket + ".>"}
}

// kvWatch is what watching bucket takes: its ordered consumers, created,
// reset (deleted and made again) and flow-controlled.
func kvWatch(bucket string) []string {
	s := kvPfx + bucket
	return []string{jsAPI + "CONSUMER.CREATE." + s + ".>", jsAPI + "CONSUMER.DELETE." + s + ".>",
		jsAPI + "CONSUMER.INFO." + s + ".>", "$JS.FC." + s + ".>"}
}

// kvPut is the subject pattern of writes to keys of bucket matching key.
func kvPut(bucket, key string) string { return "$KV." + bucket + "." + key }

// streamAdmin is what creating, updating and opening stream name takes.
func streamAdmin(name string) []string {
	return []string{jsAPI + "STREAM.CREATE." + name, jsAPI + "STREAM.UPDATE." + name, jsAPI + "STREAM.INFO." + name}
}

// Permissions returns the narrowest NATS permissions under which a user
// of role works, on a deployment already provisioned (only
// [RoleProvisioner] creates streams and buckets; a gateway or worker
// finding none fails to start):
//
//   - [RoleGateway] publishes requests to mcp.req.> (the pub acks come
//     back to its reply subject), cancellations, client answers, HTTP+SSE
//     messages and events; it reads the registry, session, result and task
//     buckets, writes sessions and tasks, watches the registry and
//     sessions, and reads the events stream. It cannot consume any group's
//     requests: it has no access to the request streams' consumers.
//   - [RoleWorker] of group G creates, opens and pulls from its own
//     consumer grp-G only (the create subject carries the filter
//     mcp.req.G.<p>, which the server checks against the config), acks
//     only its deliveries, replies to gateways on mcp.reply.*, writes
//     results, tasks, its registry definitions and heartbeats, dead-letters
//     to mcp.dlq.G, records to its own stream MCP_RESULTS_G, receives
//     cancellations and client answers, and publishes requests to its own
//     group's partitions only (a replica that drains hands an envelope on
//     its last delivery back by publishing it again). It cannot publish
//     another group's requests nor read them.
//   - [RoleProvisioner] creates and updates the request, events and
//     dead-letter streams and the four buckets, and records the topology.
//   - [RoleReplay] opens the request streams and reads them through
//     ordered consumers of its own, which it deletes when done; it reads
//     the record streams of o.Groups and the registry with direct gets.
//     Its consumers have random names, so it may create, pull from and
//     delete any consumer of the request streams except those of o.Groups,
//     denied by name (PublishDeny): list every group.
//
// Every role subscribes to its own [InboxPrefix]. It returns an error for
// an unknown role or a worker without a valid group name.
func Permissions(role Role, o PermissionOptions) (Permission, error) {
	p, err := permissions(role, o)
	for _, l := range []*[]string{&p.Publish, &p.Subscribe, &p.PublishDeny} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return p, err
}

func permissions(role Role, o PermissionOptions) (Permission, error) {
	var p Permission
	inbox := InboxPrefix(role, o.Group) + ".>"
	if o.Partitions <= 0 {
		o.Partitions = Topology{}.WithDefaults().Partitions
	}
	// each is pattern with {s} replaced by every request stream's name.
	each := func(pattern string) []string {
		out := make([]string, o.Partitions)
		for i := range out {
			out[i] = strings.ReplaceAll(pattern, "{s}", StreamName(i))
		}
		return out
	}
	switch role {
	case RoleGateway:
		id := "*"
		if o.GatewayID != "" {
			if err := CheckName("gateway", o.GatewayID); err != nil {
				return p, err
			}
			id = o.GatewayID
		}
		p.Publish = []string{requestPrefix + ">", CancelSubject, answerPrefix + "*", ssePrefix + "*", eventsPrefix + ">",
			kvPut(SessionBucket, ">"), kvPut(TaskBucket, ">")}
		for _, b := range []string{RegistryBucket, SessionBucket, ResultBucket, TaskBucket} {
			p.Publish = append(p.Publish, kvRead(b)...)
		}
		p.Publish = append(p.Publish, kvWatch(RegistryBucket)...)
		p.Publish = append(p.Publish, kvWatch(SessionBucket)...)
		p.Publish = append(p.Publish, jsAPI+"STREAM.INFO."+EventsStream, jsAPI+"CONSUMER.CREATE."+EventsStream+".>",
			jsAPI+"CONSUMER.DELETE."+EventsStream+".>", jsAPI+"CONSUMER.INFO."+EventsStream+".>",
			jsAPI+"CONSUMER.MSG.NEXT."+EventsStream+".>")
		p.Publish = append(p.Publish, LoadSubjects)
		p.Subscribe = append([]string{replyPrefix + id, replyPrefix + id + ".ack.*", ssePrefix + "*", inbox, LoadSubjects},
			each(leaderElectedPrefix+"{s}")...)
	case RoleWorker:
		g := o.Group
		if err := CheckName("group", g); err != nil {
			return p, fmt.Errorf("worker permissions: %w", err)
		}
		c := ConsumerName(g)
		for i := range o.Partitions {
			s := StreamName(i)
			p.Publish = append(p.Publish, jsAPI+"CONSUMER.CREATE."+s+"."+c+"."+RequestSubject(g, i),
				jsAPI+"CONSUMER.INFO."+s+"."+c, jsAPI+"CONSUMER.MSG.NEXT."+s+"."+c, "$JS.ACK."+s+"."+c+".>",
				RequestSubject(g, i))
		}
		p.Publish = append(p.Publish,
			replyPrefix+"*", DLQSubject(g), eventsResourcePrefix+"*",
			kvPut(ResultBucket, ">"), kvPut(TaskBucket, ">"),
			kvPut(RegistryBucket, ToolKeyPrefix+"*"), kvPut(RegistryBucket, PromptKeyPrefix+"*"),
			kvPut(RegistryBucket, ResourceKeyPrefix+"*"), kvPut(RegistryBucket, TemplateKeyPrefix+"*"),
			kvPut(RegistryBucket, HeartbeatKeyPrefix+g+".*"), kvPut(RegistryBucket, StateKeyKey),
			recordPrefix+g+".*", LoadSubject(g),
		)
		p.Publish = append(p.Publish, streamAdmin(RecordStream(g))...)
		for _, b := range []string{RegistryBucket, ResultBucket, TaskBucket} {
			p.Publish = append(p.Publish, kvRead(b)...)
		}
		p.Subscribe = []string{CancelSubject, answerPrefix + "*", inbox}
		for i := range o.Partitions {
			p.Subscribe = append(p.Subscribe, ConsumerLeaderElectedSubject(g, i))
		}
	case RoleProvisioner:
		for i := range o.Partitions {
			p.Publish = append(p.Publish, streamAdmin(StreamName(i))...)
		}
		for _, s := range []string{EventsStream, DLQStream} {
			p.Publish = append(p.Publish, streamAdmin(s)...)
		}
		for _, b := range []string{RegistryBucket, SessionBucket, ResultBucket, TaskBucket} {
			p.Publish = append(p.Publish, streamAdmin(kvPfx+b)...)
		}
		// Creating a bucket reads the account's JetStream info first.
		p.Publish = append(p.Publish, kvPut(RegistryBucket, TopologyKey), jsAPI+"INFO")
		p.Publish = append(p.Publish, kvRead(RegistryBucket)...)
		p.Subscribe = []string{inbox}
	case RoleReplay:
		p.Publish = append(p.Publish, each(jsAPI+"STREAM.INFO.{s}")...)
		p.Publish = append(p.Publish, each(jsAPI+"CONSUMER.CREATE.{s}.>")...)
		p.Publish = append(p.Publish, each(jsAPI+"CONSUMER.INFO.{s}.>")...)
		p.Publish = append(p.Publish, each(jsAPI+"CONSUMER.MSG.NEXT.{s}.*")...)
		p.Publish = append(p.Publish, each(jsAPI+"CONSUMER.DELETE.{s}.*")...)
		for _, g := range o.Groups {
			if err := CheckName("group", g); err != nil {
				return p, fmt.Errorf("replay permissions: %w", err)
			}
			p.Publish = append(p.Publish, jsAPI+"STREAM.INFO."+RecordStream(g), jsAPI+"DIRECT.GET."+RecordStream(g)+".>")
			// Its own consumers have random names: the groups' are
			// denied by name.
			c := ConsumerName(g)
			for _, op := range []string{"CREATE.{s}." + c, "CREATE.{s}." + c + ".>", "DELETE.{s}." + c, "MSG.NEXT.{s}." + c} {
				p.PublishDeny = append(p.PublishDeny, each(jsAPI+"CONSUMER."+op)...)
			}
		}
		p.Publish = append(p.Publish, kvRead(RegistryBucket)...)
		p.Subscribe = []string{inbox}
	default:
		return p, fmt.Errorf("permissions: unknown role %d", int(role))
	}
	return p, nil
}

// User is one NATS user of an authorization block: a name, the
// configuration variable holding its password, and its permissions.
type User struct {
	Name string
	// PasswordVar names the nats-server configuration variable (or, when
	// the configuration does not define it, the environment variable) that
	// holds the user's password.
	PasswordVar string
	Permission  Permission
}

// RoleUser is the user of role ([RoleWorker]: of o.Group) as
// `mcpstream provision --print-permissions` names it: mcpstream-<role>
// or mcpstream-worker-<group>, its password in variable
// MCPSTREAM_<ROLE>_PASSWORD (MCPSTREAM_WORKER_<GROUP>_PASSWORD, upper
// case, '-' as '_'). It returns the error of [Permissions].
func RoleUser(role Role, o PermissionOptions) (User, error) {
	p, err := Permissions(role, o)
	if err != nil {
		return User{}, err
	}
	name := role.String()
	if role == RoleWorker {
		name += "-" + o.Group
	}
	v := "MCPSTREAM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_PASSWORD"
	return User{Name: "mcpstream-" + name, PasswordVar: v, Permission: p}, nil
}

// AuthorizationConfig formats users as a nats-server configuration
// snippet: an authorization block with one user per entry, whose
// passwords are read from their variables, and publish and subscribe
// allow lists. Its output is sorted and stable.
func AuthorizationConfig(users []User) string {
	var b strings.Builder
	list := func(indent string, subjects []string) {
		s := slices.Clone(subjects)
		slices.Sort(s)
		for i, v := range s {
			sep := ","
			if i == len(s)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, "%s%q%s\n", indent, v, sep)
		}
	}
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		fmt.Fprintf(&b, "    {\n      user: %q\n      password: $%s\n      permissions: {\n", u.Name, u.PasswordVar)
		b.WriteString("        publish: { allow: [\n")
		list("          ", u.Permission.Publish)
		b.WriteString("        ]")
		if len(u.Permission.PublishDeny) > 0 {
			b.WriteString(", deny: [\n")
			list("          ", u.Permission.PublishDeny)
			b.WriteString("        ]")
		}
		b.WriteString(" }\n        subscribe: { allow: [\n")
		list("          ", u.Permission.Subscribe)
		b.WriteString("        ] }\n      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
