package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skjold-alarm/skjold/agent"
)

func agentCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node from a configuration file",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := agent.LoadConfig(configPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			n, err := agent.Start(cfg, log)
			if err != nil {
				return err
			}
			waitSignal()
			n.Stop()
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "/etc/skjold/skjold.hcl", "configuration file (HCL)")
	return cmd
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	s := <-ch
	fmt.Fprintf(os.Stderr, "skjold: %s received, stopping\n", s)
	signal.Stop(ch)
}
