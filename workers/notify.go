package workers

import (
	"encoding/json"
	"fmt"

	"github.com/mcpstream/mcpstream/schema"
)

// ProgressToken returns the client's progress token for this call as JSON,
// or nil when the client asked for no progress.
func (c *Call) ProgressToken() json.RawMessage { return c.progressToken }

// Progress tells the client how far the call has come (notifications/
// progress). It does nothing when the client sent no progress token. It
// returns an error only when the notification cannot be encoded or sent.
func (c *Call) Progress(progress, total float64, message string) error {
	if c.progressToken == nil {
		return nil
	}
	return c.notify(schema.NotificationProgress, struct {
		ProgressToken json.RawMessage `json:"progressToken"`
		Progress      float64         `json:"progress"`
		Total         float64         `json:"total,omitempty"`
		Message       string          `json:"message,omitempty"`
	}{c.progressToken, progress, total, message})
}

// Log sends the client a log message (notifications/message) at level
// (debug, info, notice, warning, error, critical, alert, emergency); the
// gateway drops it if it is below the level the session set. logger may be
// empty; data is any JSON value.
func (c *Call) Log(level, logger string, data any) error {
	return c.notify(schema.NotificationMessage, struct {
		Level  string `json:"level"`
		Logger string `json:"logger,omitempty"`
		Data   any    `json:"data"`
	}{level, logger, data})
}

// notify sends a notification about this call to the gateway holding the
// client, on core NATS next to the reply.
func (c *Call) notify(method string, params any) error {
	if c.r == nil {
		return nil
	}
	js, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", method, err)
	}
	mp, err := schema.JSONToMsgpack(nil, js)
	if err != nil {
		return fmt.Errorf("compacting %s: %w", method, err)
	}
	return c.r.publish(c.env, &schema.Reply{Key: c.Key, Kind: schema.ReplyNotification, Method: method, Result: mp})
}
