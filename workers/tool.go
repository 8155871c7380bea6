package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sjs "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcpstream/mcpstream/schema"
)

// Tool describes a tool: what tools/list shows. The input schema is inferred
// from the handler's input type; the output schema from its output type.
type Tool struct {
	Name        string
	Title       string
	Description string
	// Annotations are MCP tool annotations (readOnlyHint, idempotentHint, ...).
	Annotations map[string]any
	// InputSchema, if set, is the tool's input schema as published (any
	// JSON Schema 2020-12 object schema, extension keywords such as
	// x-mcp-header included) and arguments are validated against it;
	// otherwise the schema is inferred from the handler's input type, which
	// must then be able to decode the arguments.
	InputSchema json.RawMessage
	// TaskSupport lets the tool answer with a task (see [Call.Detach]):
	// schema.TaskSupportOptional, or schema.TaskSupportRequired for a tool
	// that cannot serve clients without the tasks extension. Empty: never.
	TaskSupport string
	// QueueTarget, if set, is the longest wait behind the group's backlog
	// the gateways let a call of this tool expect before refusing it (503,
	// or the overload error, with when to try again), instead of the
	// group's Options.QueueTarget: more for a slow tool whose callers
	// would rather wait, less for one that must answer fast.
	QueueTarget time.Duration
}

// ToolHandler is a typed tool: it receives the decoded, schema-validated
// arguments. A returned error becomes a tool result with isError set, which
// MCP clients show to the model; return a *schema.Error for a protocol error.
type ToolHandler[In, Out any] func(ctx context.Context, call *Call, in In) (Out, error)

// rawHandler runs a tool on its arguments.
type rawHandler func(ctx context.Context, call *Call, args toolArgs) (*schema.ToolResult, error)

// toolArgs are a call's arguments, as the envelope carries them. Their
// JSON is made only on the general way (decode): a typed tool whose
// arguments take the fast one (flatArgs) never needs it.
type toolArgs struct {
	// msgpack is nil when the call has no arguments.
	msgpack []byte
}

// jsonArgs is the JSON of a call's arguments params (msgpack; nil for
// none). Params without a JSON form are invalid params (-32602): the
// client's request was not what the worker received.
func jsonArgs(params []byte) ([]byte, *schema.Error) {
	if len(params) == 0 {
		return nil, nil
	}
	js, err := schema.MsgpackToJSON(nil, params)
	if err != nil {
		return nil, schema.Errorf(schema.CodeInvalidParams, "invalid arguments: %v", err)
	}
	return js, nil
}

// value is the arguments as encoding/json decodes them into an any (an
// empty object when there are none), decoded from their msgpack: what the
// input schema validates, without parsing the JSON once more.
func (a toolArgs) value() (any, error) {
	if len(a.msgpack) == 0 {
		return map[string]any{}, nil
	}
	return schema.MsgpackValue(a.msgpack)
}

// decode validates the arguments against validator, then decodes their
// JSON into v: the general way of a typed tool's arguments (see flatArgs
// for the fast one). Its error, "invalid arguments: ...", is for the
// model, but for arguments without a JSON form: a *schema.Error (see
// jsonArgs), for the client.
func (a toolArgs) decode(validator *sjs.Schema, v any) error {
	js, perr := jsonArgs(a.msgpack)
	if perr != nil {
		return perr
	}
	instance, err := a.value()
	if err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	if err := validator.Validate(instance); err != nil {
		return fmt.Errorf("invalid arguments: %w", argsError(err))
	}
	if js == nil {
		js = []byte("{}")
	}
	if err := json.Unmarshal(js, v); err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	return nil
}

type toolEntry struct {
	def    schema.Tool
	handle rawHandler
	// idempotent caches schema.Idempotent for the tool: its calls are run
	// again rather than their results written to the result store.
	idempotent bool
	// taskSupport is Tool.TaskSupport.
	taskSupport string
	// queueTarget is Tool.QueueTarget.
	queueTarget time.Duration
	// forward, set for a raw tool (Group.SetRaw), serves it instead of
	// handle.
	forward RawHandler
}

// AddTool adds a typed tool to g. The input schema is inferred from In (a
// struct; json tags name the properties, fields without omitempty are
// required, a jsonschema tag describes a field, and a field tagged
// `mcpstream:"sensitive"` is marked with schema.SensitiveKeyword, so that
// replay masks it). When Out is
// *schema.ToolResult the handler's result is sent as is; otherwise Out is
// sent as structuredContent, with its JSON as text content, and its schema
// becomes the tool's output schema.
//
// Arguments are validated against the input schema, then decoded into an
// In. For an In of scalar fields with an inferred schema, valid arguments
// are decoded straight from the envelope's msgpack instead, with what the
// two steps would give (see flatArgs).
//
// AddTool panics when a schema cannot be inferred from In or Out, or when
// the name is empty or already taken: these are programming errors.
func AddTool[In, Out any](g *Group, t Tool, h ToolHandler[In, Out]) {
	if t.Name == "" {
		panic("workers.AddTool: tool name is required")
	}
	in, published, err := inputSchema[In](t.InputSchema)
	if err != nil {
		panic(fmt.Sprintf("workers.AddTool %q: %v", t.Name, err))
	}
	if in.Type != "object" {
		panic(fmt.Sprintf("workers.AddTool %q: input type must be a struct or map, got schema type %q", t.Name, in.Type))
	}
	validator, err := compileSchema(published)
	if err != nil {
		panic(fmt.Sprintf("workers.AddTool %q: compiling input schema: %v", t.Name, err))
	}
	def := schema.Tool{Name: t.Name, Title: t.Title, Description: t.Description, InputSchema: published}
	if def.Execution, err = schema.TaskExecution(t.TaskSupport); err != nil {
		panic(fmt.Sprintf("workers.AddTool %q: %v", t.Name, err))
	}
	if t.Annotations != nil {
		if def.Annotations, err = json.Marshal(t.Annotations); err != nil {
			panic(fmt.Sprintf("workers.AddTool %q: encoding annotations: %v", t.Name, err))
		}
	}
	rawOut := reflect.TypeFor[Out]() == reflect.TypeFor[*schema.ToolResult]()
	if !rawOut {
		if out, err := jsonschema.For[Out](nil); err == nil && out.Type == "object" {
			def.OutputSchema, _ = json.Marshal(out)
		}
	}
	var flat *flatArgs
	if len(t.InputSchema) == 0 {
		flat = newFlatArgs(reflect.TypeFor[In](), published)
	}
	handle := func(ctx context.Context, call *Call, args toolArgs) (*schema.ToolResult, error) {
		var v In
		if flat == nil || !flat.decode(args.msgpack, reflect.ValueOf(&v).Elem()) {
			v = *new(In)
			if err := args.decode(validator, &v); err != nil {
				var perr *schema.Error
				if errors.As(err, &perr) {
					return nil, perr
				}
				return ErrorResult(err), nil
			}
		}
		out, err := h(ctx, call, v)
		if err != nil {
			var perr *schema.Error
			if errors.As(err, &perr) {
				return nil, perr
			}
			return ErrorResult(err), nil
		}
		if rawOut {
			res := any(out).(*schema.ToolResult)
			if res == nil {
				res = &schema.ToolResult{Content: []schema.Content{}}
			}
			return res, nil
		}
		text, err := json.Marshal(out)
		if err != nil {
			return nil, schema.Errorf(schema.CodeInternalError, "encoding result of %s: %v", t.Name, err)
		}
		res := &schema.ToolResult{Content: []schema.Content{{Type: "text", Text: string(text)}}}
		if def.OutputSchema != nil {
			res.StructuredContent = json.RawMessage(text)
		}
		return res, nil
	}
	g.add(&toolEntry{def: def, handle: handle, idempotent: schema.Idempotent(schema.MethodToolsCall, &def), taskSupport: t.TaskSupport, queueTarget: t.QueueTarget})
}

// inputSchema is the schema given, or else the one inferred from In, and
// its published JSON.
func inputSchema[In any](given json.RawMessage) (*jsonschema.Schema, json.RawMessage, error) {
	if len(given) > 0 {
		var s jsonschema.Schema
		if err := json.Unmarshal(given, &s); err != nil {
			return nil, nil, fmt.Errorf("decoding the given input schema: %w", err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, given); err != nil {
			return nil, nil, fmt.Errorf("the given input schema: %w", err)
		}
		return &s, compact.Bytes(), nil
	}
	s, err := jsonschema.For[In](nil)
	if err != nil {
		return nil, nil, fmt.Errorf("inferring input schema: %w", err)
	}
	markSensitive(reflect.TypeFor[In](), s)
	b, err := json.Marshal(s)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding input schema: %w", err)
	}
	return s, b, nil
}

// compileSchema compiles a tool's published input schema (JSON Schema
// 2020-12 unless it names another draft with $schema) into the validator
// its arguments are checked with. It returns the compiler's error when the
// schema is not valid against its metaschema or has a $ref it cannot
// resolve.
func compileSchema(published []byte) (*sjs.Schema, error) {
	doc, err := sjs.UnmarshalJSON(bytes.NewReader(published))
	if err != nil {
		return nil, err
	}
	const url = "urn:mcpstream:tool-input"
	c := sjs.NewCompiler()
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// argsError words a validation failure for the model: every failed
// keyword with where in the arguments it failed ("at '/n': got number,
// want integer"), without the schema's internal URL.
func argsError(err error) error {
	var ve *sjs.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var leaves []string
	var walk func(*sjs.ValidationError)
	walk = func(v *sjs.ValidationError) {
		if len(v.Causes) == 0 {
			leaves = append(leaves, v.Error())
			return
		}
		for _, c := range v.Causes {
			walk(c)
		}
	}
	walk(ve)
	return errors.New(strings.Join(leaves, "; "))
}

// TextResult is a tool result with one text item.
func TextResult(text string) *schema.ToolResult { return textResult(text, false) }

// ErrorResult is a tool result with isError set and err's text.
func ErrorResult(err error) *schema.ToolResult { return textResult(err.Error(), true) }

// textResult is a tool result with one text item, made with the item in
// one allocation.
func textResult(text string, isError bool) *schema.ToolResult {
	r := &struct {
		res  schema.ToolResult
		item [1]schema.Content
	}{item: [1]schema.Content{{Type: "text", Text: text}}}
	r.res.Content, r.res.IsError = r.item[:], isError
	return &r.res
}

// entry is the tool's registry record for group.
func (t *toolEntry) entry(group string) (schema.ToolEntry, error) {
	e := schema.ToolEntry{Tool: t.def, Group: group, QueueTargetNs: int64(t.queueTarget)}
	if err := versioned(e, func(v string) { e.Version = v }); err != nil {
		return e, fmt.Errorf("encoding tool %s: %w", t.def.Name, err)
	}
	return e, nil
}
