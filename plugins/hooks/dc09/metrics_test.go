package dc09_test

import "github.com/skjold-alarm/skjold/plugins/sdk"

func sdkMetrics() []sdk.MetricValue { return sdk.Metrics() }
