package plugintest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// LoadConfig reads a plugin's configuration for Run from a file: a JSON object (what Configure receives),
// or HCL written as in the node's configuration — either the attributes themselves or one
// `config { ... }` block holding them:
//
//	config {
//	  port = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"
//	}
func LoadConfig(path string) (json.RawMessage, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(src)
	if filepath.Ext(path) == ".json" || (len(trimmed) > 0 && trimmed[0] == '{') {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("%s: not a JSON object: %v", path, err)
		}
		return json.RawMessage(trimmed), nil
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Blocks) == 1 && body.Blocks[0].Type == "config" && len(body.Attributes) == 0 {
		body = body.Blocks[0].Body
	}
	if len(body.Blocks) > 0 {
		b := body.Blocks[0]
		return nil, fmt.Errorf("%s: unexpected block %q: write attributes, or one config { } block", b.TypeRange.String(), b.Type)
	}
	obj := map[string]json.RawMessage{}
	names := make([]string, 0, len(body.Attributes))
	for n := range body.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, diags := body.Attributes[n].Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s", diags.Error())
		}
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, n, err)
		}
		obj[n] = js
	}
	return json.Marshal(obj)
}
