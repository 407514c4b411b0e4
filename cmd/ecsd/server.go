package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
)

// serverFlags are the control plane's settings; each has an ECSD_* environment
// equivalent (flag --data-dir ↔ ECSD_DATA_DIR).
type serverFlags struct {
	listen          string
	dataDir         string
	etcdEndpoints   string
	region          string
	accountID       string
	authMode        string
	credentialsFile string
	maxSkew         time.Duration
	logLevel        string
	logFormat       string
	joinToken       string
	spotWarning     time.Duration
	capacityWait    time.Duration
}

func (f *serverFlags) register(fs *pflag.FlagSet, defaultAuth, defaultDataDir string) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "API listen address")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir, "data directory (embedded etcd lives in <data-dir>/etcd)")
	fs.StringVar(&f.etcdEndpoints, "etcd-endpoints", "", "comma-separated external etcd endpoints (empty: embedded etcd)")
	fs.StringVar(&f.region, "region", "us-east-1", "region reported in ARNs when a request does not name one")
	fs.StringVar(&f.accountID, "account-id", "000000000000", "account of the ECSD_ACCESS_KEY_ID key, and of dev-mode requests whose access key maps to no account")
	fs.StringVar(&f.authMode, "auth", defaultAuth, "signature checking: strict (recompute every SigV4 signature) or dev (accept any well-formed signature)")
	fs.StringVar(&f.credentialsFile, "credentials-file", "", "file of access keys, one per line: ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID")
	fs.DurationVar(&f.maxSkew, "max-clock-skew", 15*time.Minute, "largest accepted difference between a request's X-Amz-Date and the server clock")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&f.spotWarning, "spot-warning", 2*time.Minute, "how long an interrupted FARGATE_SPOT task gets between SIGTERM and SIGKILL")
	fs.DurationVar(&f.capacityWait, "capacity-wait-timeout", 30*time.Minute, "how long a task may wait in PROVISIONING for capacity before it is stopped")
	fs.StringVar(&f.joinToken, "join-token", "", "token agents register with (empty: generated once and kept in <data-dir>/join-token)")
}

// fromEnv fills every flag not given on the command line from ECSD_<FLAG>.
func fromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || err != nil {
			return
		}
		env := "ECSD_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(fl.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

func (f *serverFlags) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", f.logLevel, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", f.logFormat)
}

func (f *serverFlags) config(devMode bool) (controlplane.Config, error) {
	log, err := f.logger()
	if err != nil {
		return controlplane.Config{}, err
	}
	cfg := controlplane.Config{Listen: f.listen, DataDir: f.dataDir, Logger: log}
	if f.etcdEndpoints != "" {
		cfg.EtcdEndpoints = strings.Split(f.etcdEndpoints, ",")
	}
	mode := auth.Mode(f.authMode)
	if mode != auth.Strict && mode != auth.Dev {
		return cfg, fmt.Errorf("--auth %q: want strict or dev", f.authMode)
	}
	creds, err := credentials(f.credentialsFile, f.accountID)
	if err != nil {
		return cfg, err
	}
	if mode == auth.Strict && len(creds) == 0 {
		return cfg, fmt.Errorf("--auth strict needs access keys: set ECSD_ACCESS_KEY_ID and ECSD_SECRET_ACCESS_KEY, or --credentials-file; or run with --auth dev")
	}
	if len(f.accountID) != 12 || strings.Trim(f.accountID, "0123456789") != "" {
		return cfg, fmt.Errorf("--account-id %q: want 12 digits", f.accountID)
	}
	cfg.Auth = auth.Config{Mode: mode, Credentials: creds, DefaultAccount: f.accountID, DefaultRegion: f.region, MaxSkew: f.maxSkew}
	cfg.API.DevMode = devMode
	cfg.API.JoinToken = f.joinToken
	cfg.API.SpotWarning = f.spotWarning
	cfg.Controllers.CapacityWaitTimeout = f.capacityWait
	cfg.API.Version = version
	return cfg, nil
}

// credentials reads ECSD_ACCESS_KEY_ID/ECSD_SECRET_ACCESS_KEY (acting for
// account, the --account-id value) and the credentials file.
func credentials(file, account string) ([]auth.Credential, error) {
	var creds []auth.Credential
	if id, secret := os.Getenv("ECSD_ACCESS_KEY_ID"), os.Getenv("ECSD_SECRET_ACCESS_KEY"); id != "" || secret != "" {
		if id == "" || secret == "" {
			return nil, fmt.Errorf("set both ECSD_ACCESS_KEY_ID and ECSD_SECRET_ACCESS_KEY, or neither")
		}
		creds = append(creds, auth.Credential{AccessKeyID: id, SecretAccessKey: secret, Account: account})
	}
	if file != "" {
		fc, err := auth.LoadCredentialsFile(file)
		if err != nil {
			return nil, err
		}
		creds = append(creds, fc...)
	}
	return creds, nil
}

func serverCmd() *cobra.Command {
	var f serverFlags
	var pf provisionerFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the ecsd control plane (ECS API on etcd)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fromEnv(cmd.Flags()); err != nil {
				return err
			}
			cfg, err := f.config(false)
			if err != nil {
				return err
			}
			prov, closeProv, err := pf.build(cfg.DataDir, cfg.Logger)
			if err != nil {
				return err
			}
			wireNodeGroups(&cfg, prov, pf.serverURL)
			err = serve(cfg, nil)
			closeProv() // after the control plane: no controller launches any more
			return err
		},
	}
	f.register(cmd.Flags(), string(auth.Strict), "./ecsd-data")
	pf.register(cmd.Flags(), "none")
	return cmd
}

// serve runs the control plane until SIGINT/SIGTERM; ready (if set) runs once serving.
func serve(cfg controlplane.Config, ready func(*controlplane.ControlPlane)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.DataDir != "" {
		abs, err := filepath.Abs(cfg.DataDir)
		if err == nil {
			cfg.DataDir = abs
		}
	}
	cp, err := controlplane.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(cp)
	}
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	return cp.Close()
}
