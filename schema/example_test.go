package schema_test

import (
	"fmt"

	"github.com/mcpstream/mcpstream/schema"
)

// Tool arguments are compacted to msgpack for the request stream and expanded
// back to JSON for the client. Keys keep their order, strings are unescaped
// and re-escaped, and an integral float comes back as an integer, as
// encoding/json would write it.
func ExampleJSONToMsgpack() {
	in := []byte(`{"query": "caf\u00e9 \"menu\"", "limit": 10, "minScore": 0.75, "exact": false, "tags": ["a", "b"], "page": 2.0}`)
	mp, err := schema.JSONToMsgpack(nil, in)
	if err != nil {
		panic(err)
	}
	out, err := schema.MsgpackToJSON(nil, mp)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d JSON bytes -> %d msgpack bytes\n", len(in), len(mp))
	fmt.Printf("% x\n", mp[:7])
	fmt.Println(string(out))
	// Output:
	// 111 JSON bytes -> 76 msgpack bytes
	// 86 a5 71 75 65 72 79
	// {"query":"café \"menu\"","limit":10,"minScore":0.75,"exact":false,"tags":["a","b"],"page":2}
}
