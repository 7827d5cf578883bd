// Command skjold-driver-gt06 is the GT06 TCP tag driver plugin: started by a Skjold node, never by hand.
package main

import (
	"github.com/skjold-alarm/skjold/drivers/gt06"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func main() {
	sdk.ServeDriver(gt06.New(gt06.Options{Logger: sdk.Logger()}))
}
