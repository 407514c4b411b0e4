// Command ecsd is the one ecsd binary: server, agent and dev (all-in-one).
// It is the only place that reads flags and the environment.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	root := &cobra.Command{
		Use:           "ecsd",
		Short:         "A self-hosted container orchestrator that speaks the Amazon ECS API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCmd(), devCmd(), agentCmd(), nodegroupCmd(), spotCmd(), versionCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ecsd:", err)
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the ecsd version",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Println("ecsd", version)
		},
	}
}
