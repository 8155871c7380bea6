package schema

import "strings"

// Resource methods and notifications.
const (
	MethodResourcesTemplatesList = "resources/templates/list"
	MethodResourcesSubscribe     = "resources/subscribe"
	MethodResourcesUnsubscribe   = "resources/unsubscribe"
	NotificationResourceUpdated  = "notifications/resources/updated"
)

// Resource is an MCP resource as listed by resources/list.
type Resource struct {
	URI         string `json:"uri"`
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// ResourceTemplate is an MCP resource template, as listed by
// resources/templates/list.
type ResourceTemplate struct {
	URITemplate string `json:"uriTemplate"`
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// ResourceEntry is a resource's record in the registry KV.
type ResourceEntry struct {
	Resource
	Group   string `json:"group"`
	Version string `json:"version"`
}

// TemplateEntry is a resource template's record in the registry KV.
type TemplateEntry struct {
	ResourceTemplate
	Group   string `json:"group"`
	Version string `json:"version"`
}

// ReadResourceResult is the result of resources/read.
type ReadResourceResult struct {
	Contents []ResourceContents `json:"contents"`
}

// MatchTemplate matches uri against a URI template of simple {name}
// expressions (RFC 6570 level 1), each standing for one non-empty part of
// the URI without '/'. It returns the values by name.
func MatchTemplate(tmpl, uri string) (map[string]string, bool) {
	vars := map[string]string{}
	for tmpl != "" {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			return vars, tmpl == uri
		}
		if !strings.HasPrefix(uri, tmpl[:open]) {
			return nil, false
		}
		uri = uri[open:]
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			return nil, false
		}
		name := tmpl[open+1 : open+end]
		tmpl = tmpl[open+end+1:]
		// The value runs to the next literal part of the template.
		next := tmpl
		if i := strings.IndexByte(next, '{'); i >= 0 {
			next = next[:i]
		}
		var val string
		if next == "" && tmpl == "" {
			val, uri = uri, ""
		} else {
			i := strings.Index(uri, next)
			if next == "" || i < 0 {
				return nil, false
			}
			val, uri = uri[:i], uri[i:]
		}
		if val == "" || strings.ContainsRune(val, '/') {
			return nil, false
		}
		vars[name] = val
	}
	return vars, uri == ""
}
