// Command skjold-hook-dc09 is the SIA DC-09 hook plugin: started by a Skjold node, never by hand.
package main

import (
	"github.com/skjold-alarm/skjold/plugins/hooks/dc09"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func main() {
	sdk.ServeHook(dc09.New(dc09.Options{Logger: sdk.Logger()}))
}
