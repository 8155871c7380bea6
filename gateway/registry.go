package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// Snapshot is an immutable view of the registry: the tools of groups with at
// least one live worker. Readers load it from an atomic pointer and take no
// lock; the watcher replaces it whole.
type Snapshot struct {
	tools map[string]*schema.ToolEntry
	// headers are the x-mcp-header properties of the tools that have any.
	headers   map[string][]headerParam
	prompts   map[string]*schema.PromptEntry
	resources map[string]*schema.ResourceEntry // by URI
	templates []*schema.TemplateEntry
	// resourcesResult and templatesResult are resources/list and
	// resources/templates/list.
	resourcesResult, templatesResult []byte
	// listResult and promptsResult are the precomputed JSON results of
	// tools/list and prompts/list.
	listResult    []byte
	promptsResult []byte
	// Seq counts snapshots built by this gateway, from 1.
	Seq uint64
	// Rev is the registry bucket's revision the snapshot reflects: the
	// same on every gateway for the same change.
	Rev uint64
	// unserved maps the tools and prompts registered by groups that have
	// no live replica now to their group.
	unserved map[string]string
	// subjects holds the request subjects of the groups with a live
	// replica, one per partition: made once a snapshot, not once a call.
	subjects map[string][]string
}

// requestSubject returns the request subject of group's partition p
// (streams.RequestSubject): the one the snapshot holds for a live group,
// else one made now.
func (s *Snapshot) requestSubject(group string, p int) string {
	if subs := s.subjects[group]; p >= 0 && p < len(subs) {
		return subs[p]
	}
	return streams.RequestSubject(group, p)
}

// Unserved returns the worker group of a tool or prompt that is
// registered but not served (its group has no live replica), or "".
func (s *Snapshot) Unserved(name string) string { return s.unserved[name] }

// Tool returns the live tool named name, or nil.
func (s *Snapshot) Tool(name string) *schema.ToolEntry { return s.tools[name] }

// QueueTarget is the queue target of the tool a call of method (tools/call)
// names, if it sets one (0: its group's).
func (s *Snapshot) QueueTarget(method, name string) time.Duration {
	if method != schema.MethodToolsCall {
		return 0
	}
	if t := s.tools[name]; t != nil {
		return time.Duration(t.QueueTargetNs)
	}
	return 0
}

// Len is the number of live tools.
func (s *Snapshot) Len() int { return len(s.tools) }

// ToolsListResult is the JSON result of tools/list.
func (s *Snapshot) ToolsListResult() []byte { return s.listResult }

// Prompt returns the live prompt named name, or nil.
func (s *Snapshot) Prompt(name string) *schema.PromptEntry { return s.prompts[name] }

// PromptsListResult is the JSON result of prompts/list.
func (s *Snapshot) PromptsListResult() []byte { return s.promptsResult }

// ResourcesListResult is the JSON result of resources/list.
func (s *Snapshot) ResourcesListResult() []byte { return s.resourcesResult }

// TemplatesListResult is the JSON result of resources/templates/list.
func (s *Snapshot) TemplatesListResult() []byte { return s.templatesResult }

// Template returns the live resource template with exactly this URI
// template, or nil.
func (s *Snapshot) Template(uriTemplate string) *schema.TemplateEntry {
	for _, t := range s.templates {
		if t.URITemplate == uriTemplate {
			return t
		}
	}
	return nil
}

// ResourceGroup returns the group serving uri: the one with a resource of
// that URI, else the one with the first (by template) matching template;
// "" for none.
func (s *Snapshot) ResourceGroup(uri string) string {
	if r := s.resources[uri]; r != nil {
		return r.Group
	}
	for _, t := range s.templates {
		if _, ok := schema.MatchTemplate(t.URITemplate, uri); ok {
			return t.Group
		}
	}
	return ""
}

// registry keeps the snapshot current from a watch of the registry bucket.
type registry struct {
	snap  atomic.Pointer[Snapshot]
	ready chan struct{}
	// first is the snapshot current when ready closed (set before).
	first *Snapshot
	log   *slog.Logger
	// partitions is the number of partitions of the topology, for the
	// snapshot's request subjects.
	partitions int

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced by every new snapshot

	// Owned by the watch goroutine.
	tools     map[string]*schema.ToolEntry     // by registry key
	prompts   map[string]*schema.PromptEntry   // by registry key
	resources map[string]*schema.ResourceEntry // by registry key
	templates map[string]*schema.TemplateEntry // by registry key
	live      map[string]map[string]struct{}   // group -> instances
	seq       uint64
	rev       uint64 // the last revision applied
}

// newRegistry returns a registry whose snapshots hold the request
// subjects of a topology of the given number of partitions.
func newRegistry(log *slog.Logger, partitions int) *registry {
	r := &registry{
		ready:      make(chan struct{}),
		log:        log,
		partitions: partitions,
		changed:    make(chan struct{}),
		tools:      map[string]*schema.ToolEntry{},
		prompts:    map[string]*schema.PromptEntry{},
		resources:  map[string]*schema.ResourceEntry{},
		templates:  map[string]*schema.TemplateEntry{},
		live:       map[string]map[string]struct{}{},
	}
	r.snap.Store(&Snapshot{tools: map[string]*schema.ToolEntry{}, prompts: map[string]*schema.PromptEntry{},
		resources: map[string]*schema.ResourceEntry{}, listResult: []byte(`{"tools":[]}`),
		promptsResult: []byte(`{"prompts":[]}`), resourcesResult: []byte(`{"resources":[]}`),
		templatesResult: []byte(`{"resourceTemplates":[]}`)})
	return r
}

// Load returns the current snapshot.
func (r *registry) Load() *Snapshot { return r.snap.Load() }

// Changed returns a channel that is closed when the next snapshot replaces
// the current one.
func (r *registry) Changed() <-chan struct{} {
	r.changedMu.Lock()
	defer r.changedMu.Unlock()
	return r.changed
}

// watch applies registry updates until ctx ends. A burst of updates is
// applied together and produces one snapshot.
func (r *registry) watch(ctx context.Context, w jetstream.KeyWatcher) {
	defer w.Stop()
	initial := true
	dirty := false
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return
		case e, ok = <-w.Updates():
			if !ok {
				return
			}
		}
		for {
			if e == nil { // end of the initial values
				initial = false
			} else if r.apply(e) {
				dirty = true
			}
			// Take whatever else is already waiting before rebuilding.
			select {
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
				continue
			default:
			}
			break
		}
		if !initial && dirty {
			r.rebuild()
			dirty = false
		}
		if !initial {
			select {
			case <-r.ready:
			default:
				r.first = r.snap.Load()
				close(r.ready)
			}
		}
	}
}

// apply records one entry and reports whether the live view changed.
func (r *registry) apply(e jetstream.KeyValueEntry) bool {
	r.rev = max(r.rev, e.Revision())
	key := e.Key()
	put := e.Operation() == jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, streams.ToolKeyPrefix):
		if !put {
			_, had := r.tools[key]
			delete(r.tools, key)
			return had
		}
		var t schema.ToolEntry
		if err := json.Unmarshal(e.Value(), &t); err != nil || t.Name == "" || !streams.ValidName(t.Group) {
			r.log.Warn("ignoring malformed tool entry", "key", key, "err", err)
			return false
		}
		if old := r.tools[key]; old != nil && old.Version == t.Version && old.Group == t.Group {
			return false
		}
		r.tools[key] = &t
		return true
	case strings.HasPrefix(key, streams.PromptKeyPrefix):
		if !put {
			_, had := r.prompts[key]
			delete(r.prompts, key)
			return had
		}
		var p schema.PromptEntry
		if err := json.Unmarshal(e.Value(), &p); err != nil || p.Name == "" || !streams.ValidName(p.Group) {
			r.log.Warn("ignoring malformed prompt entry", "key", key, "err", err)
			return false
		}
		if old := r.prompts[key]; old != nil && old.Version == p.Version && old.Group == p.Group {
			return false
		}
		r.prompts[key] = &p
		return true
	case strings.HasPrefix(key, streams.ResourceKeyPrefix):
		return applyEntry(r, e, put, r.resources, func(v *schema.ResourceEntry) (string, string) { return v.URI, v.Group },
			func(v *schema.ResourceEntry) string { return v.Version })
	case strings.HasPrefix(key, streams.TemplateKeyPrefix):
		return applyEntry(r, e, put, r.templates, func(v *schema.TemplateEntry) (string, string) { return v.URITemplate, v.Group },
			func(v *schema.TemplateEntry) string { return v.Version })
	case strings.HasPrefix(key, streams.HeartbeatKeyPrefix):
		group, instance, ok := strings.Cut(strings.TrimPrefix(key, streams.HeartbeatKeyPrefix), ".")
		if !ok {
			return false
		}
		inst := r.live[group]
		if put {
			if _, known := inst[instance]; known {
				return false // a refresh
			}
			if inst == nil {
				inst = map[string]struct{}{}
				r.live[group] = inst
			}
			inst[instance] = struct{}{}
			return len(inst) == 1 // the group came alive
		}
		if _, known := inst[instance]; !known {
			return false
		}
		delete(inst, instance)
		if len(inst) == 0 {
			delete(r.live, group)
			return true // the group died
		}
		return false
	}
	return false
}

func (r *registry) rebuild() {
	r.seq++
	s := &Snapshot{tools: make(map[string]*schema.ToolEntry, len(r.tools)), Seq: r.seq, Rev: r.rev}
	list := make([]*schema.Tool, 0, len(r.tools))
	s.unserved = map[string]string{}
	for _, t := range r.tools {
		if len(r.live[t.Group]) == 0 {
			s.unserved[t.Name] = t.Group
			continue
		}
		if prev := s.tools[t.Name]; prev != nil {
			r.log.Warn("tool served by two groups; keeping one", "tool", t.Name, "groups", []string{prev.Group, t.Group})
			if prev.Group < t.Group {
				continue
			}
		}
		s.tools[t.Name] = t
	}
	s.headers = map[string][]headerParam{}
	for _, t := range s.tools {
		list = append(list, &t.Tool)
		if hp := headerParams(t.InputSchema); hp != nil {
			s.headers[t.Name] = hp
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	b, err := json.Marshal(struct {
		Tools []*schema.Tool `json:"tools"`
	}{list})
	if err != nil {
		r.log.Error("encoding tools/list", "err", err)
		return
	}
	s.listResult = b
	s.prompts = make(map[string]*schema.PromptEntry, len(r.prompts))
	plist := make([]*schema.Prompt, 0, len(r.prompts))
	for _, p := range r.prompts {
		if len(r.live[p.Group]) > 0 {
			s.prompts[p.Name] = p
		} else {
			s.unserved[p.Name] = p.Group
		}
	}
	for _, p := range s.prompts {
		plist = append(plist, &p.Prompt)
	}
	sort.Slice(plist, func(i, j int) bool { return plist[i].Name < plist[j].Name })
	if s.promptsResult, err = json.Marshal(struct {
		Prompts []*schema.Prompt `json:"prompts"`
	}{plist}); err != nil {
		r.log.Error("encoding prompts/list", "err", err)
		return
	}
	s.resources = map[string]*schema.ResourceEntry{}
	rlist := []*schema.Resource{}
	for _, e := range r.resources {
		if len(r.live[e.Group]) > 0 {
			s.resources[e.URI] = e
			rlist = append(rlist, &e.Resource)
		}
	}
	sort.Slice(rlist, func(i, j int) bool { return rlist[i].URI < rlist[j].URI })
	tlist := []*schema.ResourceTemplate{}
	for _, e := range r.templates {
		if len(r.live[e.Group]) > 0 {
			s.templates = append(s.templates, e)
		}
	}
	sort.Slice(s.templates, func(i, j int) bool { return s.templates[i].URITemplate < s.templates[j].URITemplate })
	for _, e := range s.templates {
		tlist = append(tlist, &e.ResourceTemplate)
	}
	s.resourcesResult, _ = json.Marshal(struct {
		Resources []*schema.Resource `json:"resources"`
	}{rlist})
	s.templatesResult, _ = json.Marshal(struct {
		Templates []*schema.ResourceTemplate `json:"resourceTemplates"`
	}{tlist})
	s.subjects = make(map[string][]string, len(r.live))
	for group := range r.live {
		subs := make([]string, r.partitions)
		for p := range subs {
			subs[p] = streams.RequestSubject(group, p)
		}
		s.subjects[group] = subs
	}
	r.snap.Store(s)
	r.changedMu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.changedMu.Unlock()
	r.log.Debug("registry snapshot", "seq", s.Seq, "tools", len(s.tools), "groups", len(r.live))
}

// applyEntry records a registry entry of a kind keyed by registry key (put
// or removed) and reports whether the live view changed.
func applyEntry[T any](r *registry, e jetstream.KeyValueEntry, put bool, m map[string]*T, ident func(*T) (string, string), version func(*T) string) bool {
	key := e.Key()
	if !put {
		_, had := m[key]
		delete(m, key)
		return had
	}
	v := new(T)
	name, group := "", ""
	if err := json.Unmarshal(e.Value(), v); err == nil {
		name, group = ident(v)
	}
	if name == "" || !streams.ValidName(group) {
		r.log.Warn("ignoring malformed registry entry", "key", key)
		return false
	}
	if old := m[key]; old != nil && version(old) == version(v) {
		if on, og := ident(old); on == name && og == group {
			return false // unchanged
		}
	}
	m[key] = v
	return true
}
