// Package examples holds mcpstream's example worker groups, run by
// `mcpstream dev --examples NAME,...` and `mcpstream worker --examples`.
package examples

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mcpstream/mcpstream/workers"
)

var constructors = map[string]func() *workers.Group{
	"demo":        Demo,
	"conformance": Conformance,
}

// Names lists the example groups, sorted.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Parse turns a comma-separated list of example names into groups. An empty
// list or "0" means none. It returns an error naming an unknown example.
func Parse(list string) ([]*workers.Group, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "0" || list == "none" {
		return nil, nil
	}
	var out []*workers.Group
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		mk, ok := constructors[n]
		if !ok {
			return nil, fmt.Errorf("unknown example group %q (have %s)", n, strings.Join(Names(), ", "))
		}
		seen[n] = true
		out = append(out, mk())
	}
	return out, nil
}
