// Command skjold-driver-modem is the GSM modem driver plugin: started by a Skjold node, never by hand.
package main

import (
	"github.com/skjold-alarm/skjold/drivers/modem"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func main() {
	sdk.ServeDriver(modem.New(modem.Options{Logger: sdk.Logger()}))
}
