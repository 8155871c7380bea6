package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// A gateway on an embedded JetStream server, its endpoints mounted on a
// mux: a session revision's client initializes a session and lists the
// tools (none: no worker group runs here), and a stateless client asks
// server/discover which revisions are served.
func ExampleGateway_Mount() {
	dir, err := os.MkdirTemp("", "mcpstream-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw, err := gateway.New(ctx, nc, gateway.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	gw.Mount(mux)
	srv := httptest.NewServer(mux)
	defer func() { gw.Drain(); srv.Close(); gw.Close() }()

	post := func(body string, header ...string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+gateway.MCPPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, body := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"example","version":"1"}}}`)
	var init struct {
		Result schema.InitializeResult `json:"result"`
	}
	_ = json.Unmarshal(body, &init)
	fmt.Println("initialize:", resp.StatusCode, init.Result.ProtocolVersion, init.Result.ServerInfo.Name)

	_, body = post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, schema.HeaderSessionID, resp.Header.Get(schema.HeaderSessionID))
	fmt.Println("tools/list:", string(body))

	_, body = post(`{"jsonrpc":"2.0","id":3,"method":"server/discover","params":{"_meta":{`+
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
		schema.HeaderProtocolVersion, schema.Revision20260728, schema.HeaderMethod, schema.MethodServerDiscover)
	var discover struct {
		Result struct {
			SupportedVersions []string `json:"supportedVersions"`
			ResultType        string   `json:"resultType"`
		} `json:"result"`
	}
	_ = json.Unmarshal(body, &discover)
	fmt.Println("server/discover:", discover.Result.ResultType, discover.Result.SupportedVersions)
	// Output:
	// initialize: 200 2025-11-25 mcpstream
	// tools/list: {"jsonrpc":"2.0","id":2,"result":{"tools":[]}}
	// server/discover: complete [2026-07-28 2025-11-25 2025-06-18 2025-03-26]
}
