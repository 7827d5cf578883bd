// Command skjold-driver-sim is the simulator driver plugin: started by a Skjold node, never by hand.
package main

import (
	"github.com/skjold-alarm/skjold/drivers/sim"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func main() {
	sdk.ServeDriver(sim.New(sim.Options{Logger: sdk.Logger()}))
}
