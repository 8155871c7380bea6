package schema

import (
	"encoding/json"
	"fmt"
)

// LoadReport is what a worker group's load looks like to the gateways,
// which admit a call to the group only while its estimated wait is within
// the group's queue target. Worker replicas and gateways publish one on
// the group's load subject every report interval (core NATS, not stored):
//
//   - a replica (Instance set): its handlers (Concurrency, Busy), the mean
//     run time of its handlers (ServiceNs), the group's queue target, and,
//     the group's backlog (Backlog: the envelopes stored and not yet
//     acknowledged on every partition, read from the consumers when all
//     its handlers were busy at some moment since its last report;
//     [BacklogNone] when they never were, and so nothing waited;
//     [BacklogUnknown] when the reading failed);
//   - a gateway (Gateway set): the calls it admitted to the group during
//     the interval ending At (Admitted), which every other gateway adds
//     to the backlog it last heard of, and those it refused on the
//     group's queue target (Refused): with them, what it was asked for,
//     by which the gateways share the group's room fairly.
type LoadReport struct {
	Group    string `json:"group"`
	Instance string `json:"instance,omitempty"`
	Gateway  string `json:"gateway,omitempty"`
	// At is when the report was made, in Unix nanoseconds.
	At            int64 `json:"at"`
	Concurrency   int   `json:"concurrency,omitempty"`
	Busy          int   `json:"busy,omitempty"`
	Backlog       int64 `json:"backlog,omitempty"`
	ServiceNs     int64 `json:"serviceNs,omitempty"`
	QueueTargetNs int64 `json:"queueTargetNs,omitempty"`
	Admitted      int64 `json:"admitted,omitempty"`
	Refused       int64 `json:"refused,omitempty"`
}

// Backlog values that are not counts.
const (
	BacklogNone    = -1
	BacklogUnknown = -2
)

// Marshal encodes the report.
func (r *LoadReport) Marshal() ([]byte, error) { return json.Marshal(r) }

// UnmarshalLoadReport decodes a report; it returns an error for one that
// does not parse or names no group.
func UnmarshalLoadReport(b []byte) (*LoadReport, error) {
	var r LoadReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding load report: %w", err)
	}
	if r.Group == "" || (r.Instance == "") == (r.Gateway == "") {
		return nil, fmt.Errorf("decoding load report: want a group and one of instance or gateway")
	}
	return &r, nil
}
