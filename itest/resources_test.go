package itest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestResources: the official client lists a worker group's resources and
// templates and reads them through JetStream, a templated URI included; an
// unknown URI is answered -32002.
func TestResources(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, endpoint, "itest-resources", nil)
	defer cs.Close()
	list, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range list.Resources {
		uris = append(uris, r.URI)
	}
	if strings.Join(uris, ",") != "test://static-binary,test://static-text,test://watched-resource" {
		t.Fatalf("resources/list: %v", uris)
	}
	tmpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(tmpls.ResourceTemplates) != 1 || tmpls.ResourceTemplates[0].URITemplate != "test://template/{id}/data" {
		t.Fatalf("resources/templates/list: %+v, %v", tmpls, err)
	}
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://static-text"})
	if err != nil || len(res.Contents) != 1 || res.Contents[0].Text != "This is the content of the static text resource." {
		t.Fatalf("read static-text: %+v, %v", res, err)
	}
	res, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://template/42/data"})
	if err != nil || len(res.Contents) != 1 || !strings.Contains(res.Contents[0].Text, `"id": "42"`) {
		t.Fatalf("read through the template: %+v, %v", res, err)
	}
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://nope"})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32002 {
		t.Fatalf("unknown resource: %v, want a -32002 error", err)
	}
	dev.stop()
}
