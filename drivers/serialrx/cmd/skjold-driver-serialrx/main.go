// Command skjold-driver-serialrx is the serial receiver driver plugin (NMEA over RS-232 from a base
// station): started by a Skjold node, never by hand.
package main

import (
	"github.com/skjold-alarm/skjold/drivers/serialrx"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func main() {
	sdk.ServeDriver(serialrx.New(serialrx.Options{Logger: sdk.Logger()}))
}
