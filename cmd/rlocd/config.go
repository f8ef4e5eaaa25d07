package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/rloc-router/rloc/router"
)

// The configuration file is router.Config (its mapstructure tags are the
// keys) plus the daemon's log section. decode.go turns the file's strings
// into addresses, prefixes, durations and enums.

// daemonConfig is what a configuration file holds: the router's schema
// and the daemon's log section.
type daemonConfig struct {
	router.Config `mapstructure:",squash"`
	// Log configures the daemon's logger.
	Log logConfig `mapstructure:"log"`
}

// logConfig is the log section.
type logConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `mapstructure:"level"`
	// Format is text (default) or json.
	Format string `mapstructure:"format"`
}

// envKeys are the scalar keys that RLOC_* environment variables override
// even when the file does not set them (RLOC_MGMT_SOCKET, RLOC_LOG_LEVEL...).
var envKeys = []string{"name", "nonce", "mgmt.socket", "metrics.listen", "status.listen", "log.level", "log.format",
	"etr.register_interval", "etr.deregister_on_stop", "itr.probe_interval", "map_server.registration_timeout"}

// options are the settings that are not part of router.Config.
type options struct {
	logLevel  slog.Level
	logFormat string
}

// newViper reads file, RLOC_* environment variables and the flags set in fs.
func newViper(file string, fs *pflag.FlagSet) (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	v.SetEnvPrefix("RLOC")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for _, k := range envKeys {
		_ = v.BindEnv(k)
	}
	if fs != nil {
		for flag, key := range map[string]string{"mgmt-socket": "mgmt.socket", "metrics": "metrics.listen", "status": "status.listen",
			"log-level": "log.level", "log-format": "log.format", "name": "name"} {
			if f := fs.Lookup(flag); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}

// loadConfig reads and checks a configuration.
func loadConfig(file string, fs *pflag.FlagSet) (router.Config, options, error) {
	v, err := newViper(file, fs)
	if err != nil {
		return router.Config{}, options{}, err
	}
	var fc daemonConfig
	if err := v.UnmarshalExact(&fc, viper.DecodeHook(decodeHook())); err != nil {
		return router.Config{}, options{}, fmt.Errorf("%s: %w", file, keyErrors(err))
	}
	opts, err := fc.Log.options()
	if err != nil {
		return fc.Config, opts, fmt.Errorf("%s: %w", file, err)
	}
	if err := fc.Config.Validate(); err != nil {
		return fc.Config, opts, fmt.Errorf("%s: %w", file, err)
	}
	return fc.Config, opts, nil
}

// options checks the log section.
func (l logConfig) options() (options, error) {
	var o options
	switch strings.ToLower(l.Level) {
	case "", "info":
		o.logLevel = slog.LevelInfo
	case "debug":
		o.logLevel = slog.LevelDebug
	case "warn", "warning":
		o.logLevel = slog.LevelWarn
	case "error":
		o.logLevel = slog.LevelError
	default:
		return o, fmt.Errorf("log.level: %q (want debug, info, warn or error)", l.Level)
	}
	switch l.Format {
	case "", "text", "json":
		o.logFormat = l.Format
	default:
		return o, fmt.Errorf("log.format: %q (want text or json)", l.Format)
	}
	return o, nil
}

// keyErrors rewrites mapstructure's errors as "key: problem" lines, one
// per problem, sorted: "'sites[0]' has invalid keys: colour" becomes
// "sites[0].colour: unknown key".
func keyErrors(err error) error {
	var lines []string
	var walk func(error)
	walk = func(err error) {
		if de, ok := err.(*mapstructure.DecodeError); ok {
			lines = append(lines, keyLines(de.Name(), de.Unwrap())...)
			return
		}
		switch e := err.(type) {
		case interface{ Unwrap() []error }: // errors.Join
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }: // "decoding failed ...: %w"
			walk(e.Unwrap())
		default:
			lines = append(lines, err.Error())
		}
	}
	walk(err)
	sort.Strings(lines)
	return errors.New(strings.Join(lines, "; "))
}

// keyLines formats the problem err of key name.
func keyLines(name string, err error) []string {
	msg := err.Error()
	if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
		var out []string
		for _, k := range strings.Split(keys, ", ") {
			out = append(out, join(name, k)+": unknown key")
		}
		return out
	}
	var ie *indexError
	if errors.As(err, &ie) {
		name, msg = fmt.Sprintf("%s[%d]", name, ie.i), ie.err.Error()
	}
	if name == "" {
		return []string{msg}
	}
	return []string{name + ": " + msg}
}

// join appends key k to the path name.
func join(name, k string) string {
	if name == "" {
		return k
	}
	return name + "." + k
}
