package workers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// Revision 2026-07-28 has no requests from server to client. A handler that
// needs the client's input gets the answer from the retry of the request:
// the first run asks ([Call.Ask] returns [ErrInputRequired]), the request
// is answered input_required with the questions and a signed requestState,
// and the client sends the request again with its answers. The handler runs
// again from the start, and this time Ask returns them. requestState carries
// the answers of earlier rounds, so a handler may ask several rounds; it is
// bound by HMAC to the method, target, arguments and principal, and expires.

// ErrInputRequired is returned by [Call.Ask] and its kin on a stateless
// revision when the client must answer first. Return it from the handler
// (wrapped or not); the request is then answered with the questions asked.
var ErrInputRequired = errors.New("workers: input required from the client")

// stateTTL bounds how long a requestState is accepted.
const stateTTL = 10 * time.Minute

// InputRequest is a question for the client: Key names it in the request
// (stable across rounds), Method is sampling/createMessage,
// elicitation/create or roots/list, Params its params (encoded as JSON).
type InputRequest struct {
	Key    string
	Method string
	Params any
}

// inputs is a stateless call's multi round-trip state.
type inputs struct {
	answers map[string]json.RawMessage // from requestState and the retry
	used    map[string]json.RawMessage // answers the handler took this run
	asked   []askedInput               // questions still open, in order
	n       int                        // questions asked this run, for keys
	// err, when set, is why the retry's requestState was refused: a raw
	// handler may forward it to the server that made it, but asking the
	// client (Call.AskAll) returns err.
	err *schema.Error
}

type askedInput struct {
	key, method string
	params      json.RawMessage
}

// requestState is what a signed requestState holds.
type requestState struct {
	Method    string                     `json:"m"`
	Name      string                     `json:"n"`
	Args      string                     `json:"a"` // sha256 of the arguments, hex
	Principal string                     `json:"p,omitempty"`
	Expires   int64                      `json:"e"` // Unix milliseconds
	Answers   map[string]json.RawMessage `json:"r,omitempty"`
}

// prepareInputs sets up a stateless call's multi round-trip state from the
// envelope: the answers of a verified requestState and of the retry. A
// requestState that fails verification is -32602 (returned, and kept in
// the call's inputs for AskAll).
func (r *runner) prepareInputs(env *schema.Envelope, call *Call) *schema.Error {
	if !schema.IsStateless(env.Revision) {
		return nil
	}
	switch env.Method {
	case schema.MethodToolsCall, schema.MethodPromptsGet, schema.MethodResourcesRead:
	default:
		return nil
	}
	in := &inputs{answers: map[string]json.RawMessage{}, used: map[string]json.RawMessage{}}
	if env.RequestState != "" {
		st, err := r.verifyState(env.RequestState)
		if err == nil && (st.Method != env.Method || st.Name != env.Name || st.Args != digest(env.Params) || st.Principal != env.Principal) {
			err = errors.New("it belongs to another request")
		}
		if err == nil && time.Now().UnixMilli() > st.Expires {
			err = errors.New("it has expired")
		}
		if err != nil {
			in.err = schema.Errorf(schema.CodeInvalidParams, "requestState rejected: %v", err)
		} else {
			for k, v := range st.Answers {
				in.answers[k] = v
			}
		}
	}
	if len(env.InputResponses) > 0 {
		js, err := schema.MsgpackToJSON(nil, env.InputResponses)
		var fresh map[string]json.RawMessage
		if err == nil && json.Unmarshal(js, &fresh) == nil {
			for k, v := range fresh {
				in.answers[k] = v
			}
		}
	}
	call.inputs = in
	if in.err != nil {
		return in.err
	}
	return nil
}

// inputRequired is the result of a run that asked questions still open.
func (r *runner) inputRequired(env *schema.Envelope, in *inputs) ([]byte, error) {
	st := requestState{Method: env.Method, Name: env.Name, Args: digest(env.Params), Principal: env.Principal,
		Expires: time.Now().Add(stateTTL).UnixMilli(), Answers: in.used}
	state, err := r.signState(&st)
	if err != nil {
		return nil, err
	}
	b := append([]byte(`{"resultType":"input_required","inputRequests":`), askedJSON(in.asked)...)
	b = append(b, `,"requestState":`...)
	s, _ := json.Marshal(state)
	b = append(append(b, s...), '}')
	return schema.JSONToMsgpack(nil, b)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// askedJSON is the inputRequests map of open questions.
func askedJSON(asked []askedInput) json.RawMessage {
	b := []byte{'{'}
	for i, q := range asked {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(q.key)
		m, _ := json.Marshal(q.method)
		b = append(append(b, k...), `:{"method":`...)
		b = append(append(b, m...), `,"params":`...)
		b = append(append(b, q.params...), '}')
	}
	return append(b, '}')
}

// signState encodes st as base64url(JSON) "." base64url(HMAC-SHA256).
func (r *runner) signState(st *requestState) (string, error) {
	if len(r.stateKey) == 0 {
		return "", errors.New("workers: no request-state key")
	}
	js, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("encoding requestState: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(js)
	mac := hmac.New(sha256.New, r.stateKey)
	mac.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// verifyState checks a requestState's signature and decodes it.
func (r *runner) verifyState(s string) (*requestState, error) {
	payload, sig, ok := strings.Cut(s, ".")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err != nil || len(r.stateKey) == 0 {
		return nil, errors.New("it is malformed")
	}
	mac := hmac.New(sha256.New, r.stateKey)
	mac.Write([]byte(payload))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return nil, errors.New("its signature does not verify")
	}
	js, err := base64.RawURLEncoding.DecodeString(payload)
	var st requestState
	if err != nil || json.Unmarshal(js, &st) != nil {
		return nil, errors.New("it is malformed")
	}
	return &st, nil
}
