package streams

import (
	"strings"
	"testing"
)

// allows reports whether one of patterns (NATS subjects with * and >)
// matches subject.
func allows(patterns []string, subject string) bool {
	for _, p := range patterns {
		pt, st := strings.Split(p, "."), strings.Split(subject, ".")
		ok := true
		for i, tok := range pt {
			if tok == ">" {
				ok = len(st) > i
				break
			}
			if i >= len(st) || tok != "*" && tok != st[i] {
				ok = false
				break
			}
			if i == len(pt)-1 && len(st) != len(pt) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestPermissionsWorkerOwnGroupOnly: a worker of group a may create, open,
// pull from and ack its own consumer on every partition, but not group b's,
// nor publish requests, nor read b's inboxes; the gateway may publish
// requests but not pull.
func TestPermissionsWorkerOwnGroupOnly(t *testing.T) {
	a, err := Permissions(RoleWorker, PermissionOptions{Group: "a", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	for p := range 3 {
		s := StreamName(p)
		for _, subj := range []string{"$JS.API.CONSUMER.CREATE." + s + ".grp-a." + RequestSubject("a", p),
			"$JS.API.CONSUMER.MSG.NEXT." + s + ".grp-a", "$JS.API.CONSUMER.INFO." + s + ".grp-a",
			"$JS.ACK." + s + ".grp-a.1.2.3.4.5.6.7", RequestSubject("a", p)} {
			if !allows(a.Publish, subj) {
				t.Errorf("worker a may not publish %s", subj)
			}
		}
		for _, subj := range []string{"$JS.API.CONSUMER.CREATE." + s + ".grp-b." + RequestSubject("b", p),
			"$JS.API.CONSUMER.CREATE." + s + ".grp-a." + RequestSubject("b", p), "$JS.API.CONSUMER.CREATE." + s + ".grp-a",
			"$JS.API.CONSUMER.MSG.NEXT." + s + ".grp-b", "$JS.ACK." + s + ".grp-b.1.2.3.4.5.6.7",
			RequestSubject("b", p), "$JS.API.CONSUMER.DELETE." + s + ".grp-a"} {
			if allows(a.Publish, subj) {
				t.Errorf("worker a may publish %s", subj)
			}
		}
	}
	if allows(a.Publish, "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_3.grp-a") {
		t.Error("a fourth partition is allowed for 3")
	}
	if !allows(a.Subscribe, InboxPrefix(RoleWorker, "a")+".x") || allows(a.Subscribe, InboxPrefix(RoleWorker, "b")+".x") ||
		!allows(a.Subscribe, ConsumerLeaderElectedSubject("a", 1)) || allows(a.Subscribe, ConsumerLeaderElectedSubject("b", 1)) ||
		!allows(a.Publish, LoadSubject("a")) || allows(a.Publish, LoadSubject("b")) {
		t.Errorf("worker a's inboxes: subscribe %v", a.Subscribe)
	}
	if allows(a.Publish, RegistrySubject(TopologyKey)) || allows(a.Publish, RegistrySubject(HeartbeatKey("b", "i"))) {
		t.Error("worker a may overwrite the topology or b's heartbeat")
	}
	gw, err := Permissions(RoleGateway, PermissionOptions{GatewayID: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	if !allows(gw.Publish, RequestSubject("b", 2)) || allows(gw.Publish, "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_0.grp-b") ||
		allows(gw.Publish, "$JS.API.CONSUMER.CREATE.MCP_REQ_0.grp-b") {
		t.Errorf("gateway publish %v", gw.Publish)
	}
	if !allows(gw.Subscribe, LoadSubject("b")) || !allows(gw.Publish, LoadSubject("b")) {
		t.Errorf("gateway gw1 cannot hear or report group b's load: publish %v, subscribe %v", gw.Publish, gw.Subscribe)
	}
	if !allows(gw.Subscribe, ReplySubject("gw1")) || !allows(gw.Subscribe, LeaderElectedSubject(3)) || allows(gw.Subscribe, "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.KV_mcp_results") || !allows(gw.Subscribe, PubAckPrefix("gw1")+"k") || allows(gw.Subscribe, ReplySubject("gw2")) {
		t.Errorf("gateway gw1 subscribe %v", gw.Subscribe)
	}
	r, err := Permissions(RoleReplay, PermissionOptions{Groups: []string{"a"}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_1.grp-a", "$JS.API.CONSUMER.DELETE.MCP_REQ_1.grp-a",
		"$JS.API.CONSUMER.CREATE.MCP_REQ_1.grp-a.mcp.req.a.1"} {
		if !allows(r.PublishDeny, subj) {
			t.Errorf("replay may publish %s", subj)
		}
	}
	if !allows(r.Publish, "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_1.xyz_1") || allows(r.PublishDeny, "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_1.xyz_1") {
		t.Error("replay may not pull from its own consumers")
	}
	if _, err := Permissions(RoleWorker, PermissionOptions{}); err == nil {
		t.Error("a worker without a group got permissions")
	}
	if _, err := Permissions(Role(99), PermissionOptions{}); err == nil {
		t.Error("an unknown role got permissions")
	}
}
