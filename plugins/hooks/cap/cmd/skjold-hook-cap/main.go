// Command skjold-hook-cap is the CAP 1.2 hook plugin: started by a Skjold node, never by hand.
package main

import (
	"github.com/skjold-alarm/skjold/plugins/hooks/cap"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func main() {
	sdk.ServeHook(cap.New(cap.Options{Logger: sdk.Logger()}))
}
