package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

type weatherIn struct {
	City  string   `json:"city" jsonschema:"the city to look up"`
	Units string   `json:"units,omitempty" jsonschema:"metric or imperial"`
	Days  int      `json:"days"`
	Tags  []string `json:"tags,omitempty"`
}

type weatherOut struct {
	TempC float64 `json:"tempC"`
	Sky   string  `json:"sky"`
}

// mustPanic runs f and returns the panic value, failing the test if f returns.
func mustPanic(t *testing.T, what string, f func()) (v any) {
	t.Helper()
	defer func() {
		v = recover()
		if v == nil {
			t.Errorf("%s: did not panic", what)
		}
	}()
	f()
	return nil
}

type jsonSchema struct {
	Type                 any                        `json:"type"`
	Properties           map[string]json.RawMessage `json:"properties"`
	Required             []string                   `json:"required"`
	AdditionalProperties any                        `json:"additionalProperties"`
}

func decodeSchema(t *testing.T, b json.RawMessage) jsonSchema {
	t.Helper()
	var s jsonSchema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema %s: %v", b, err)
	}
	return s
}

func weatherGroup() *Group {
	g := NewGroup("wx")
	AddTool(g, Tool{Name: "weather", Title: "Weather", Description: "Looks up the weather.",
		Annotations: map[string]any{"readOnlyHint": true}},
		func(_ context.Context, _ *Call, in weatherIn) (weatherOut, error) {
			return weatherOut{TempC: float64(len(in.City)), Sky: "clear in " + in.City}, nil
		})
	return g
}

func TestAddToolInputSchema(t *testing.T) {
	g := weatherGroup()
	def := g.tool("weather").def
	if def.Name != "weather" || def.Title != "Weather" || def.Description != "Looks up the weather." {
		t.Errorf("definition fields: %+v", def)
	}
	s := decodeSchema(t, def.InputSchema)
	if s.Type != "object" {
		t.Errorf("input schema type = %v, want object", s.Type)
	}
	var props []string
	for p := range s.Properties {
		props = append(props, p)
	}
	slices.Sort(props)
	if want := []string{"city", "days", "tags", "units"}; !slices.Equal(props, want) {
		t.Errorf("properties = %v, want %v", props, want)
	}
	req := slices.Clone(s.Required)
	slices.Sort(req)
	if want := []string{"city", "days"}; !slices.Equal(req, want) {
		t.Errorf("required = %v, want %v (fields without omitempty)", req, want)
	}
	var city struct {
		Type        string `json:"type"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(s.Properties["city"], &city); err != nil {
		t.Fatal(err)
	}
	if city.Type != "string" || city.Description != "the city to look up" {
		t.Errorf("city property = %+v, want string described by its jsonschema tag", city)
	}
	var ann map[string]any
	if err := json.Unmarshal(def.Annotations, &ann); err != nil || ann["readOnlyHint"] != true {
		t.Errorf("annotations = %s (%v)", def.Annotations, err)
	}
}

func TestAddToolOutputSchema(t *testing.T) {
	g := weatherGroup()
	out := g.tool("weather").def.OutputSchema
	if out == nil {
		t.Fatal("struct output has no output schema")
	}
	s := decodeSchema(t, out)
	if s.Type != "object" || s.Properties["tempC"] == nil || s.Properties["sky"] == nil {
		t.Errorf("output schema = %s", out)
	}

	AddTool(g, Tool{Name: "raw"}, func(context.Context, *Call, weatherIn) (*schema.ToolResult, error) {
		return nil, nil
	})
	if o := g.tool("raw").def.OutputSchema; o != nil {
		t.Errorf("*schema.ToolResult output has output schema %s", o)
	}
	if g.tool("raw").def.Annotations != nil {
		t.Errorf("no annotations given, got %s", g.tool("raw").def.Annotations)
	}
	AddTool(g, Tool{Name: "str"}, func(context.Context, *Call, weatherIn) (string, error) { return "", nil })
	if o := g.tool("str").def.OutputSchema; o != nil {
		t.Errorf("string output has output schema %s (only objects may)", o)
	}
	AddTool(g, Tool{Name: "map-in"}, func(context.Context, *Call, map[string]any) (*schema.ToolResult, error) {
		return nil, nil
	})
	if want := []string{"map-in", "raw", "str", "weather"}; !slices.Equal(g.Tools(), want) {
		t.Errorf("Tools() = %v, want %v", g.Tools(), want)
	}
	if g.Name() != "wx" {
		t.Errorf("Name() = %q", g.Name())
	}
}

func TestAddToolPanics(t *testing.T) {
	g := weatherGroup()
	h := func(context.Context, *Call, weatherIn) (*schema.ToolResult, error) { return nil, nil }
	if v := mustPanic(t, "empty name", func() { AddTool(g, Tool{}, h) }); v != nil && !strings.Contains(fmt.Sprint(v), "name") {
		t.Errorf("empty name panic %q does not say what is wrong", v)
	}
	if v := mustPanic(t, "duplicate name", func() { AddTool(g, Tool{Name: "weather"}, h) }); v != nil && !strings.Contains(fmt.Sprint(v), "twice") {
		t.Errorf("duplicate panic %q does not say what is wrong", v)
	}
	mustPanic(t, "int input", func() {
		AddTool(g, Tool{Name: "int-in"}, func(context.Context, *Call, int) (*schema.ToolResult, error) { return nil, nil })
	})
	mustPanic(t, "string input", func() {
		AddTool(g, Tool{Name: "str-in"}, func(context.Context, *Call, string) (*schema.ToolResult, error) { return nil, nil })
	})
	mustPanic(t, "chan input", func() {
		AddTool(g, Tool{Name: "chan-in"}, func(context.Context, *Call, chan int) (*schema.ToolResult, error) { return nil, nil })
	})
	// A failed AddTool adds nothing.
	if want := []string{"weather"}; !slices.Equal(g.Tools(), want) {
		t.Errorf("Tools() after panics = %v, want %v", g.Tools(), want)
	}
}

func TestToolHandlerResults(t *testing.T) {
	g := NewGroup("h")
	var gotCall *Call
	var gotIn weatherIn
	AddTool(g, Tool{Name: "wx"}, func(_ context.Context, c *Call, in weatherIn) (weatherOut, error) {
		gotCall, gotIn = c, in
		switch in.City {
		case "fail":
			return weatherOut{}, errors.New("no such city")
		case "proto":
			return weatherOut{}, fmt.Errorf("wrapped: %w", schema.Errorf(schema.CodeResourceNotFound, "gone"))
		}
		return weatherOut{TempC: 21.5, Sky: "clear"}, nil
	})
	AddTool(g, Tool{Name: "nilraw"}, func(context.Context, *Call, struct{}) (*schema.ToolResult, error) {
		return nil, nil
	})
	ctx := context.Background()
	call := &Call{Key: "k1", Attempt: 2}
	wx := g.tool("wx").handle

	res, err := wx(ctx, call, argsOf(t, `{"city":"Oslo","days":2,"units":"metric"}`))
	if err != nil || res.IsError {
		t.Fatalf("valid call: %+v, %v", res, err)
	}
	if gotCall != call || gotIn.City != "Oslo" || gotIn.Days != 2 || gotIn.Units != "metric" {
		t.Errorf("handler got call %p in %+v", gotCall, gotIn)
	}
	if len(res.Content) != 1 || res.Content[0].Type != "text" || res.Content[0].Text != `{"tempC":21.5,"sky":"clear"}` {
		t.Errorf("text content = %+v", res.Content)
	}
	sc, _ := json.Marshal(res.StructuredContent)
	if string(sc) != `{"tempC":21.5,"sky":"clear"}` {
		t.Errorf("structuredContent = %s", sc)
	}

	// Each refusal says what is wrong and where, for the model to mend.
	for _, bad := range []struct{ args, says string }{
		{`{"days":2}`, "missing property 'city'"},
		{`{"city":5,"days":2}`, "at '/city': got number, want string"},
		{`{"city":"x","days":2,"extra":1}`, "additional properties 'extra' not allowed"},
		{`[1,2]`, "got array, want object"},
		{`{"city":"x","days":2.5}`, "at '/days': got number, want integer"},
		{`{"city":"x","days":2,"tags":[1]}`, "at '/tags/0': got number, want string"},
	} {
		gotCall = nil
		res, err := wx(ctx, call, argsOf(t, bad.args))
		if err != nil {
			t.Errorf("args %s: protocol error %v, want an isError result", bad.args, err)
			continue
		}
		if !res.IsError || len(res.Content) == 0 || !strings.HasPrefix(res.Content[0].Text, "invalid arguments: ") ||
			!strings.Contains(res.Content[0].Text, bad.says) || strings.Contains(res.Content[0].Text, "urn:") {
			t.Errorf("args %s: result %+v, want isError with 'invalid arguments: ...%s...'", bad.args, res, bad.says)
		}
		if gotCall != nil {
			t.Errorf("args %s: handler ran on invalid input", bad.args)
		}
	}

	// Arguments without a JSON form (not even msgpack) are not what the
	// client sent: a protocol error, as a raw tool's are.
	gotCall = nil
	res, err = wx(ctx, call, argsOf(t, "\xc1"))
	if perr := (*schema.Error)(nil); res != nil || !errors.As(err, &perr) || perr.Code != schema.CodeInvalidParams ||
		!strings.Contains(perr.Message, "msgpack type 0xc1 has no JSON form") || gotCall != nil {
		t.Errorf("args without a JSON form: %+v, %v; want -32602 naming the msgpack type, the handler not run", res, err)
	}

	res, err = wx(ctx, call, argsOf(t, `{"city":"fail","days":1}`))
	if err != nil || !res.IsError || res.Content[0].Text != "no such city" || res.StructuredContent != nil {
		t.Errorf("handler error: %+v, %v; want isError result with its text", res, err)
	}

	res, err = wx(ctx, call, argsOf(t, `{"city":"proto","days":1}`))
	var perr *schema.Error
	if res != nil || !errors.As(err, &perr) || perr.Code != schema.CodeResourceNotFound || perr.Message != "gone" {
		t.Errorf("wrapped *schema.Error: %+v, %v; want the protocol error", res, err)
	}

	// Missing arguments are an empty object: a tool without required fields
	// runs, a tool with them reports which.
	res, err = g.tool("nilraw").handle(ctx, call, toolArgs{})
	if err != nil || res == nil || res.IsError || res.Content == nil {
		t.Errorf("nil raw result: %+v, %v; want a result with empty (non-nil) content", res, err)
	}
	if b, _ := json.Marshal(res); string(b) != `{"content":[]}` {
		t.Errorf("nil raw result encodes as %s, want {\"content\":[]}", b)
	}
	res, err = wx(ctx, call, toolArgs{})
	if err != nil || !res.IsError {
		t.Errorf("no arguments to a tool with required fields: %+v, %v", res, err)
	}
}

func TestToolEntryVersion(t *testing.T) {
	a := weatherGroup().tool("weather")
	e1, err := a.entry("wx")
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := a.entry("wx")
	if e1.Group != "wx" || e1.Name != "weather" || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(e1.Version) {
		t.Errorf("entry = %+v", e1)
	}
	if e1.Version != e2.Version {
		t.Errorf("version not deterministic: %s vs %s", e1.Version, e2.Version)
	}
	if e3, _ := a.entry("other"); e3.Version == e1.Version {
		t.Error("version does not change with the group")
	}
	g := NewGroup("wx")
	AddTool(g, Tool{Name: "weather", Title: "Weather", Description: "Looks up the weather, better.",
		Annotations: map[string]any{"readOnlyHint": true}},
		func(context.Context, *Call, weatherIn) (weatherOut, error) { return weatherOut{}, nil })
	if e4, _ := g.tool("weather").entry("wx"); e4.Version == e1.Version {
		t.Error("version does not change with the description")
	}
}

func TestTextAndErrorResult(t *testing.T) {
	r := TextResult("hi")
	if r.IsError || len(r.Content) != 1 || r.Content[0] != (schema.Content{Type: "text", Text: "hi"}) {
		t.Errorf("TextResult = %+v", r)
	}
	e := ErrorResult(errors.New("bad"))
	if !e.IsError || len(e.Content) != 1 || e.Content[0].Text != "bad" {
		t.Errorf("ErrorResult = %+v", e)
	}
	// Content added to a result goes in a new array: the first item stays.
	r.Content = append(r.Content, schema.Content{Type: "text", Text: "more"})
	if len(r.Content) != 2 || r.Content[0].Text != "hi" || r.Content[1].Text != "more" {
		t.Errorf("appended: %+v", r.Content)
	}
	if n := testing.AllocsPerRun(100, func() { _ = TextResult("hi") }); n != 1 {
		t.Errorf("TextResult: %.0f allocations, want 1", n)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Concurrency != 64 || o.Batch != 0 || o.Heartbeat.Seconds() != 5 || o.HeartbeatTTL.Seconds() != 20 || o.Logger == nil { // Batch is set by Run, from the partitions
		t.Errorf("defaults = %+v", o)
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(o.Instance) {
		t.Errorf("default instance %q", o.Instance)
	}
	if o2 := (Options{}).withDefaults(); o2.Instance == o.Instance {
		t.Error("two default instances got the same name")
	}
	if long := (Options{Heartbeat: 10 * time.Second}).withDefaults(); long.HeartbeatTTL != 30*time.Second {
		t.Errorf("Heartbeat 10s: HeartbeatTTL %s, want three intervals", long.HeartbeatTTL)
	}
	set := Options{Concurrency: 3, Batch: 4, Heartbeat: 7, HeartbeatTTL: 9, Instance: "i"}.withDefaults()
	if set.Concurrency != 3 || set.Batch != 4 || set.Heartbeat != 7 || set.HeartbeatTTL != 9 || set.Instance != "i" {
		t.Errorf("set options changed: %+v", set)
	}
}

// BenchmarkTypedToolHandler measures what a typed tool costs a call on top
// of its own work: decoding and validating the arguments against the
// inferred schema, then encoding the result.
func BenchmarkTypedToolHandler(b *testing.B) {
	g := NewGroup("bench")
	AddTool(g, Tool{Name: "wx"}, func(_ context.Context, _ *Call, in weatherIn) (weatherOut, error) {
		return weatherOut{TempC: float64(in.Days), Sky: in.City}, nil
	})
	wx := g.tool("wx").handle
	args := argsOf(b, `{"city":"Oslo","days":2,"units":"metric","tags":["a","b"]}`)
	ctx := context.Background()
	call := &Call{Key: "k"}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := wx(ctx, call, args); err != nil || res.IsError {
			b.Fatal(res, err)
		}
	}
}

// TestSensitiveTag: a field tagged `mcpstream:"sensitive"`, nested or in a
// slice, is marked in the inferred input schema; others are not.
func TestSensitiveTag(t *testing.T) {
	type cred struct {
		Name   string `json:"name"`
		Secret string `json:"secret" mcpstream:"sensitive"`
	}
	type in struct {
		User     string  `json:"user"`
		Password string  `json:"password" mcpstream:"sensitive"`
		Creds    []cred  `json:"creds,omitempty"`
		Primary  *cred   `json:"primary,omitempty"`
		Ignored  float64 `json:"-"`
	}
	g := NewGroup("g")
	AddTool(g, Tool{Name: "login"}, func(context.Context, *Call, in) (string, error) { return "", nil })
	var got []string
	for _, p := range schema.SensitivePaths(g.tool("login").def.InputSchema) {
		got = append(got, strings.Join(p, "/"))
	}
	slices.Sort(got)
	if want := []string{"creds/*/secret", "password", "primary/secret"}; !slices.Equal(got, want) {
		t.Errorf("sensitive %v, want %v in %s", got, want, g.tool("login").def.InputSchema)
	}
}

// argsOf is a call's arguments as the worker gets them, from their JSON;
// text that is not JSON is taken to be the envelope's msgpack.
func argsOf(tb testing.TB, text string) toolArgs {
	tb.Helper()
	mp, err := schema.JSONToMsgpack(nil, []byte(text))
	if err != nil {
		return toolArgs{msgpack: []byte(text)}
	}
	return toolArgs{msgpack: mp}
}
