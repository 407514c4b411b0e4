package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ecsd/ecsd/apiserver"
)

// `ecsd spot interrupt`: interrupt a FARGATE_SPOT task the way the pool does
// when it needs the room back (POST /ecsd/v1/spot-interruptions).
func spotCmd() *cobra.Command {
	var c nodeGroupClient
	root := &cobra.Command{
		Use:   "spot",
		Short: "Fargate Spot operations on an ecsd server",
	}
	c.register(root.PersistentFlags())
	var cluster string
	interrupt := &cobra.Command{
		Use:   "interrupt TASK",
		Short: "Interrupt a FARGATE_SPOT task: SIGTERM now, SIGKILL after the server's --spot-warning, stop code SpotInterruption",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if v, ok := os.LookupEnv("ECSD_ENDPOINT"); ok && !cmd.Flags().Changed("endpoint") {
				c.endpoint = v
			}
			var out map[string]any
			in := map[string]string{"cluster": cluster, "task": args[0]}
			if err := c.post(cmd.Context(), apiserver.SpotInterruptionPath, "", in, &out); err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}
	interrupt.Flags().StringVar(&cluster, "cluster", "", "cluster of the task (default: default; not needed with a task ARN)")
	root.AddCommand(interrupt)
	return root
}
