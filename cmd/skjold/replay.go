package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skjold-alarm/skjold/core/scenario"
)

func replayCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "replay FILE...",
		Short: "Run scenarios (docs/scenarios/*.json) through the evaluator and say pass or fail",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			failed := 0
			for _, path := range args {
				s, err := scenario.Load(path)
				if err != nil {
					return err
				}
				res := scenario.Run(s)
				word := "PASS"
				if !res.Pass {
					word = "FAIL"
					failed++
				}
				fmt.Fprintf(out, "%s  %s  (%s)\n", word, s.Name, path)
				for _, p := range res.Problems {
					fmt.Fprintf(out, "      %s\n", p)
				}
				if verbose || !res.Pass {
					for _, t := range res.Transitions {
						fmt.Fprintf(out, "      %s\n", t)
					}
				}
			}
			fmt.Fprintf(out, "%d passed, %d failed\n", len(args)-failed, failed)
			if failed > 0 {
				return fmt.Errorf("%d scenario(s) failed", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every transition")
	return cmd
}
