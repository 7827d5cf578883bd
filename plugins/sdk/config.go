package sdk

import (
	"encoding/json"
	"sort"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// ConfigFields splits a plugin's configuration (the JSON object the host passes to Configure) into its
// attributes, with their names sorted so that a plugin checks them, and reports errors, in a stable
// order. A configuration that is not a JSON object gives one error on the whole ("").
func ConfigFields(raw []byte) (fields map[string]json.RawMessage, names []string, err *pluginpb.ConfigError) {
	if e := json.Unmarshal(raw, &fields); e != nil || fields == nil {
		return nil, nil, ConfigErr("", "the configuration must be a JSON object")
	}
	names = make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return fields, names, nil
}
