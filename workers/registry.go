package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// Heartbeat is a worker instance's record in the registry bucket. It carries
// a per-key TTL of three heartbeat intervals, so a crashed worker's record
// expires by itself and gateways stop routing to a group with none left.
type Heartbeat struct {
	Group       string    `json:"group"`
	Instance    string    `json:"instance"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Tools       []string  `json:"tools"`
	Concurrency int       `json:"concurrency"`
	StartedAt   time.Time `json:"startedAt"`
}

type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
	reg    jetstream.KeyValue
	key    string
}

// register writes g's registry entries, its tools, prompts, resources and
// templates (only those that changed, so that replicas starting do not
// churn every gateway's snapshot), then starts the heartbeat. It returns
// the registry bucket's error, wrapped with the key being written.
func (r *runner) register(ctx context.Context, reg jetstream.KeyValue) (*heartbeat, error) {
	select { // what was added before Run is registered now
	case <-r.g.changed:
	default:
	}
	names := r.g.Tools()
	if err := r.putRecords(ctx, reg); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	val, err := json.Marshal(Heartbeat{Group: r.g.name, Instance: r.o.Instance, Host: host, PID: os.Getpid(),
		Tools: names, Concurrency: r.o.Concurrency, StartedAt: time.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("encoding heartbeat: %w", err)
	}
	key := streams.HeartbeatKey(r.g.name, r.o.Instance)
	subject := streams.RegistrySubject(key)
	// JetStream takes message TTLs in whole seconds, at least one: round
	// up.
	ttl := max(r.o.HeartbeatTTL, time.Second)
	ttl = (ttl + time.Second - 1) / time.Second * time.Second
	beat := func(ctx context.Context) error {
		// A plain KV Put cannot carry a TTL (and Update clears it), so the
		// heartbeat is published on the key's subject with a message TTL.
		_, err := r.js.Publish(ctx, subject, val, jetstream.WithMsgTTL(ttl))
		return err
	}
	if err := beat(ctx); err != nil {
		return nil, fmt.Errorf("writing heartbeat %s: %w", key, err)
	}
	hctx, cancel := context.WithCancel(r.base)
	h := &heartbeat{cancel: cancel, done: make(chan struct{}), reg: reg, key: key}
	go func() {
		defer close(h.done)
		t := time.NewTimer(r.o.Heartbeat)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				// A heartbeat that fails (the bucket's leader is being
				// elected) is tried again soon, not an interval later:
				// the group must not look dead to the gateways.
				bctx, bcancel := context.WithTimeout(hctx, min(r.o.Heartbeat, heartbeatRetry*4))
				err := beat(bctx)
				bcancel()
				switch {
				case hctx.Err() != nil:
				case err != nil:
					if !failing {
						r.log.Warn("heartbeat failed; trying again", "err", err)
					}
					failing = true
					t.Reset(heartbeatRetry)
					continue
				case failing:
					r.log.Info("heartbeat written again")
					failing = false
				}
				t.Reset(r.o.Heartbeat)
			case <-r.g.changed:
				// Added while running: register it now (the heartbeat's
				// tool list catches up at the next restart; routing
				// follows the entries).
				if err := r.putRecords(hctx, reg); err != nil && hctx.Err() == nil {
					r.log.Warn("registering added entries", "err", err)
				}
			}
		}
	}()
	return h, nil
}

// A heartbeat lives heartbeatTTLFloor at least by default, and one that
// fails is tried again every heartbeatRetry: a heartbeat missed while the
// registry bucket elects a leader (4-9 s after its node dies) must not make
// the gateways count a live group dead and refuse its calls.
const (
	heartbeatTTLFloor = 20 * time.Second
	heartbeatRetry    = 250 * time.Millisecond
)

// putRecords writes g's registry entries that changed.
func (r *runner) putRecords(ctx context.Context, reg jetstream.KeyValue) error {
	records, err := r.g.records()
	if err != nil {
		return err
	}
	for _, rec := range records {
		if rec.exclusive {
			err := putExclusive(ctx, reg, r.g.name, rec.key, rec.value)
			var taken *nameTaken
			if errors.As(err, &taken) {
				r.log.Error("refusing to register "+rec.what+": another group serves it; names must be unique across groups",
					"name", rec.name, "group", r.g.name, "servedBy", taken.holder)
				continue
			}
			if err != nil {
				return fmt.Errorf("registering %s: %w", rec.key, err)
			}
			continue
		}
		if err := putIfChanged(ctx, reg, rec.key, rec.value); err != nil {
			return fmt.Errorf("registering %s: %w", rec.key, err)
		}
	}
	for _, key := range r.g.takeRemoved() {
		if err := deleteOwn(ctx, reg, r.g.name, key); err != nil {
			return fmt.Errorf("removing %s: %w", key, err)
		}
	}
	return nil
}

// nameTaken is putExclusive's refusal: another group's entry holds the key.
type nameTaken struct{ holder string }

func (e *nameTaken) Error() string { return "registered by group " + e.holder }

// entryGroup is the group a registry entry names.
func entryGroup(b []byte) string {
	var e struct {
		Group string `json:"group"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Group
}

// putExclusive writes v (as JSON) under key for group unless the key holds
// exactly that already, and only where no other group's entry is: it
// returns a *nameTaken naming the group whose entry holds the key. The
// write is conditional on the revision read (Create for a key not there,
// Update otherwise), so that two groups registering one name at once do
// not both win.
func putExclusive(ctx context.Context, reg jetstream.KeyValue, group, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	for range 3 { // a lost race with a replica of the same group: read again
		cur, err := reg.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err = reg.Create(ctx, key, b); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
				return err
			}
			continue
		case err != nil:
			return err
		}
		if holder := entryGroup(cur.Value()); holder != group {
			return &nameTaken{holder: holder}
		}
		if bytes.Equal(cur.Value(), b) {
			return nil
		}
		if _, err = reg.Update(ctx, key, b, cur.Revision()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("registering %s: the entry kept changing", key)
}

// deleteOwn deletes the registry entry under key if it is group's.
func deleteOwn(ctx context.Context, reg jetstream.KeyValue, group, key string) error {
	cur, err := reg.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if entryGroup(cur.Value()) != group {
		return nil
	}
	if err := reg.Delete(ctx, key, jetstream.LastRevision(cur.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	return nil
}

// stop ends the heartbeat and removes the instance's record.
func (h *heartbeat) stop() {
	h.cancel()
	<-h.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Purge with a TTL: watchers see the instance go, and the marker itself
	// is removed after a minute instead of piling up.
	_ = h.reg.Purge(ctx, h.key, jetstream.PurgeTTL(time.Minute))
}

// record is one registry entry of a group: tool, prompt, resource or
// template, stamped with its version.
type record struct {
	key   string
	value any
	// exclusive is set for raw definitions (Group.SetRaw): registered only
	// where no other group's entry is (putExclusive). what and name say
	// what it is in the log of a refusal.
	exclusive  bool
	what, name string
}

// records returns the registry entries of everything g serves.
func (g *Group) records() ([]record, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []record
	add := func(key, what, name string, raw bool, e any, setVersion func(string)) error {
		if err := versioned(e, setVersion); err != nil {
			return fmt.Errorf("encoding %s %s: %w", what, name, err)
		}
		out = append(out, record{key: key, value: e, exclusive: raw, what: what, name: name})
		return nil
	}
	for name, t := range g.tools {
		e, err := t.entry(g.name)
		if err != nil {
			return nil, err
		}
		out = append(out, record{key: streams.ToolKey(name), value: e, exclusive: t.forward != nil, what: "tool", name: name})
	}
	for name, p := range g.prompts {
		e := &schema.PromptEntry{Prompt: p.def, Group: g.name}
		if err := add(streams.PromptKey(name), "prompt", name, p.forward != nil, e, func(v string) { e.Version = v }); err != nil {
			return nil, err
		}
	}
	for uri, res := range g.resources {
		e := &schema.ResourceEntry{Resource: res.def, Group: g.name}
		if err := add(streams.ResourceKey(uri), "resource", uri, res.forward != nil, e, func(v string) { e.Version = v }); err != nil {
			return nil, err
		}
	}
	for _, t := range g.templates {
		e := &schema.TemplateEntry{ResourceTemplate: t.def, Group: g.name}
		if err := add(streams.TemplateKey(t.def.URITemplate), "template", t.def.URITemplate, t.forward != nil, e, func(v string) { e.Version = v }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// putIfChanged writes v (as JSON) under key unless the key already holds
// exactly that, so that replicas starting do not churn every gateway.
func putIfChanged(ctx context.Context, reg jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	cur, err := reg.Get(ctx, key)
	if err == nil && bytes.Equal(cur.Value(), b) {
		return nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	_, err = reg.Put(ctx, key, b)
	return err
}
