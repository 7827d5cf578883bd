// Command skjold is the one binary of the Skjold appliance: the node (agent), a single-node development
// appliance (dev), and the CLI verbs that wrap the HTTP API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "skjold:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "skjold",
		Short:         "Skjold: the reverse violence alarm appliance",
		Long:          "Skjold watches ankle tags and protected persons' units against the zones of restraining orders and raises alarms.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addr := os.Getenv("SKJOLD_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:8470"
	}
	c := &client{}
	root.PersistentFlags().StringVar(&c.base, "addr", addr, "API address of a node (env SKJOLD_ADDR)")
	root.PersistentFlags().StringVar(&c.user, "user", os.Getenv("USER"), "who is acting, recorded in the audit trail")
	root.AddCommand(agentCmd(), devCmd(), orderCmd(c), alarmCmd(c), deviceCmd(c), pluginCmd(), healthCmd(c), replayCmd(), clusterCmd(c), backupCmd(c), restoreCmd())
	return root
}
