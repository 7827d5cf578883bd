package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/skjold-alarm/skjold/plugins/host"
	"github.com/skjold-alarm/skjold/plugins/plugintest"
)

func pluginCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Work with plugin binaries"}
	hash := &cobra.Command{
		Use: "hash PATH", Short: "Print the SHA-256 to pin a plugin binary with in the configuration", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sum, err := host.FileSHA256(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sha256 = %q\n", sum)
			return nil
		},
	}
	cmd.AddCommand(hash, pluginTestCmd())
	return cmd
}

func pluginTestCmd() *cobra.Command {
	var (
		configFile string
		opts       plugintest.Options
		verbose    bool
	)
	c := &cobra.Command{
		Use:   "test PATH",
		Short: "Run the conformance kit against a plugin binary",
		Long: `Launches the plugin binary as a node does (go-plugin over gRPC, AutoMTLS, pinned by its SHA-256, no
environment) and checks the handshake, the config schema and its validation errors, Configure with the
given config, Health, Metrics, the observation stream, acks and commands (drivers) or deliveries (hooks),
graceful shutdown and a clean start after SIGKILL. Prints one line per check and exits non-zero when a
check fails.

--config takes a JSON object, or HCL: the attributes of the plugin's config { } block, with or without
the enclosing config { } block.`,
		Example: `  skjold plugin test bin/skjold-driver-sim --config sim.json
  skjold plugin test ./skjold-driver-acme --kind driver --config acme.hcl --verbose`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			if configFile != "" {
				cfg, err := plugintest.LoadConfig(configFile)
				if err != nil {
					return fmt.Errorf("--config: %w", err)
				}
				opts.Config = cfg
			}
			if opts.Kind != "" && opts.Kind != "driver" && opts.Kind != "hook" {
				return fmt.Errorf("--kind must be driver or hook, not %q", opts.Kind)
			}
			opts.PluginOutput = io.Discard
			if verbose {
				opts.PluginOutput = cmd.ErrOrStderr()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			rep := plugintest.Run(ctx, opts)
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			if n := len(rep.Failures()); n > 0 {
				return fmt.Errorf("%d check(s) failed", n)
			}
			return nil
		},
	}
	c.Flags().StringVar(&configFile, "config", "", "the plugin's configuration: a JSON object or an HCL config { } body")
	c.Flags().StringVar(&opts.Kind, "kind", "", "driver or hook (default: the kind the plugin names in Info)")
	c.Flags().StringVar(&opts.Node, "node", "plugintest", "node id passed to Configure")
	c.Flags().DurationVar(&opts.CallTimeout, "timeout", 5*time.Second, "bound of each call into the plugin")
	c.Flags().DurationVar(&opts.ObservationWait, "observation-wait", 10*time.Second, "how long a driver has to send its first batch")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the plugin's own log on stderr")
	return c
}
