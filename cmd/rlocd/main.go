// Command rlocd is the rloc LISP router daemon: it reads a YAML
// configuration (any mix of the ITR, ETR, PITR, PETR, RTR, Map-Server and
// Map-Resolver roles), starts a router.Router and runs until SIGTERM or
// SIGINT (graceful shutdown); SIGHUP reloads mappings, sites and static
// map-cache entries.
//
//	rlocd --config FILE [--mgmt-socket PATH] [--metrics ADDR] [--status ADDR] [--log-level LEVEL] [--check]
//
// Every setting can also come from an RLOC_* environment variable, e.g.
// RLOC_MGMT_SOCKET or RLOC_LOG_LEVEL (nested keys joined by "_").
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/rloc-router/rloc/router"
)

func main() {
	if printVersion(os.Args[1:], os.Stdout) {
		return
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func flags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("rlocd", pflag.ContinueOnError)
	fs.String("config", "", "configuration file (YAML)")
	fs.String("mgmt-socket", "", "management API Unix socket (overrides mgmt.socket)")
	fs.String("metrics", "", "address for /metrics (overrides metrics.listen)")
	fs.String("status", "", "address of the read-only status page, e.g. 127.0.0.1:8080 (overrides status.listen)")
	fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.String("log-format", "", "text or json (overrides log.format)")
	fs.String("name", "", "router name (overrides name)")
	fs.Bool("check", false, "check the configuration and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: rlocd --config FILE [flags]\n\nflags:\n%s", fs.FlagUsages())
	}
	return fs
}

func run(args []string, stderr io.Writer) int {
	fs := flags()
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		// pflag prints nothing itself when it continues on error.
		fmt.Fprintf(stderr, "rlocd: %v\n", err)
		fs.Usage()
		return 2
	}
	file, _ := fs.GetString("config")
	if file == "" {
		fmt.Fprintln(stderr, "rlocd: --config FILE is required")
		return 2
	}
	cfg, opts, err := loadConfig(file, fs)
	if err != nil {
		fmt.Fprintln(stderr, "rlocd: config:", err)
		return 1
	}
	if check, _ := fs.GetBool("check"); check {
		if err := cfg.CheckStateFile(); err != nil {
			fmt.Fprintln(stderr, "rlocd: config:", err)
			return 1
		}
		fmt.Fprintln(stderr, "rlocd:", file, "ok")
		return 0
	}
	var level slog.LevelVar // a reload may change it
	level.Set(opts.logLevel)
	hopts := &slog.HandlerOptions{Level: &level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if opts.logFormat == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(h)
	if cfg.Name != "" {
		log = log.With("router", cfg.Name)
	}
	cfg.Logger = log

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)

	priv := checkPrivileges(log, &cfg)
	r, err := router.Start(cfg)
	if err != nil {
		log.Error("start-up failed", "err", err)
		return 1
	}
	if err := dropPrivileges(log, priv); err != nil {
		log.Error("dropping capabilities failed, stopping", "err", err)
		r.Stop()
		return 1
	}
	for {
		select {
		case err := <-r.WorkerErr():
			log.Error("fast path failed, stopping", "err", err)
			r.Stop()
			return 1
		case s := <-sig:
			if s != syscall.SIGHUP {
				log.Info("shutting down", "signal", s.String())
				r.Stop()
				return 0
			}
			if err := reload(r, file, fs, log, opts, &level); err != nil {
				log.Error("reload failed; the old configuration stays", "err", err)
			}
		}
	}
}

// reload applies file to r on SIGHUP: what router.Reload applies, and
// log.level. A change of log.format needs a restart and refuses the reload.
func reload(r *router.Router, file string, fs *pflag.FlagSet, log *slog.Logger, opts options, level *slog.LevelVar) error {
	nc, no, err := loadConfig(file, fs)
	if err != nil {
		return err
	}
	if no.logFormat != opts.logFormat {
		return fmt.Errorf("log.format: changing this needs a restart (%s in force, %s in %s)", orText(opts.logFormat), orText(no.logFormat), file)
	}
	nc.Logger = log
	if err := r.Reload(nc); err != nil {
		return err
	}
	if no.logLevel != level.Level() {
		log.Info("log level changed", "from", level.Level().String(), "to", no.logLevel.String())
		level.Set(no.logLevel)
	}
	return nil
}

// orText names the default log format.
func orText(format string) string {
	if format == "" {
		return "text"
	}
	return format
}
