// Command skjold-hook-siren is the siren hook plugin: started by a Skjold node, never by hand.
package main

import (
	"github.com/skjold-alarm/skjold/plugins/hooks/siren"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func main() {
	sdk.ServeHook(siren.New(siren.Options{Logger: sdk.Logger()}))
}
