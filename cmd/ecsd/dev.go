package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
)

func devCmd() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run ecsd all-in-one for local development (dev auth, reset endpoint)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fromEnv(cmd.Flags()); err != nil {
				return err
			}
			cfg, err := f.config(true)
			if err != nil {
				return err
			}
			return serve(cfg, func(cp *controlplane.ControlPlane) {
				fmt.Fprintf(os.Stderr, `
ecsd dev is running: ECS API at %[1]s (data in %[2]s)

  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=%[3]s
  aws ecs create-cluster --cluster-name demo --endpoint-url %[1]s
  aws ecs list-clusters --endpoint-url %[1]s

Wipe all state: curl -X POST %[1]s/ecsd/reset
`, cp.URL(), cfg.DataDir, f.region)
			})
		},
	}
	f.register(cmd.Flags(), string(auth.Dev), "./ecsd-data")
	return cmd
}
