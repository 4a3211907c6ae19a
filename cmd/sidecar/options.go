package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Options are the sidecar's settings, from flags or CRAWLPOLITE_<FLAG> environment variables.
type Options struct {
	Listen         string
	AdminListen    string
	Redis          string
	PolicyFile     string
	ReloadInterval time.Duration
	AllowCIDR      string
	Lease          time.Duration
	CADir          string
	OnRedisDown    string
	DrainTimeout   time.Duration
	HeaderTimeout  time.Duration
	ConnectPorts   string
	UserAgent      string
	LogLevel       string
	MemoryLimit    string
	Resolver       string
	// RedisPassword comes only from CRAWLPOLITE_REDIS_PASSWORD (a secretKeyRef in the pod): a flag
	// would show it in the pod spec and in ps.
	RedisPassword string
}

// AddFlags binds every option to a flag of fs, with its default.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:15080", "proxy address the crawler's HTTP(S)_PROXY points at")
	fs.StringVar(&o.AdminListen, "admin-listen", "127.0.0.1:15081", "admin address: /healthz, /readyz, /metrics, /state, POST /quitquitquit (with the token)")
	fs.StringVar(&o.Redis, "redis", "", "shared semaphore: redis://, rediss://, redis+sentinel://, redis+cluster:// URL; empty for an in-process semaphore (one pod alone)")
	fs.StringVar(&o.PolicyFile, "policy-file", "", "policy document (YAML); empty for the built-in defaults; reloaded when it changes")
	fs.DurationVar(&o.ReloadInterval, "reload-interval", 2*time.Second, "how often the policy file is checked for changes")
	fs.StringVar(&o.AllowCIDR, "allow-cidr", "", "comma-separated destination ranges allowed although private, loopback or link-local")
	fs.DurationVar(&o.Lease, "lease", 30*time.Second, "lease of a held turn, renewed while the request runs; a killed sidecar's turns free within it")
	fs.StringVar(&o.CADir, "ca-dir", "", "directory to write the per-pod CA (ca.crt) and trust bundle (bundle.crt) into; empty writes nothing")
	fs.StringVar(&o.OnRedisDown, "on-redis-down", "fail", "when Redis is unreachable: fail (503 with Retry-After) or local (in-process limits per pod)")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 25*time.Second, "on SIGTERM, how long requests in flight may finish")
	fs.DurationVar(&o.HeaderTimeout, "header-timeout", 10*time.Second, "how long a client may take to send a request head (slow clients are cut off)")
	fs.StringVar(&o.ConnectPorts, "connect-ports", "443,8443", "comma-separated ports CONNECT may reach, or * for any")
	fs.StringVar(&o.UserAgent, "user-agent", "crawlpolite-robots/1.0 (+https://github.com/crawlpolite/crawlpolite)", "User-Agent of robots.txt fetches")
	fs.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.MemoryLimit, "memory-limit", "", "the container's memory limit (bytes, or a quantity like 256Mi): sets the Go memory limit to 80% of it and sizes the caches; empty or 0 for none")
	fs.StringVar(&o.Resolver, "resolver", "", "DNS server (host:port) to resolve origins with; empty for the system resolver")
}

// parseOptions reads environment variables first, then flags, so a flag wins over its variable.
func parseOptions(args []string, lookup func(string) (string, bool)) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("crawlpolite-sidecar", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v, ok := lookup(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	o.RedisPassword, _ = lookup("CRAWLPOLITE_REDIS_PASSWORD")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(nil)
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, o.Validate()
}

// envName is a flag's environment variable: CRAWLPOLITE_ and the name in upper snake case.
func envName(flag string) string {
	return "CRAWLPOLITE_" + strings.Map(func(r rune) rune {
		if r == '-' {
			return '_'
		}
		return unicode.ToUpper(r)
	}, flag)
}

// Validate reports settings that cannot work.
func (o *Options) Validate() error {
	var errs []error
	for name, addr := range map[string]string{"listen": o.Listen, "admin-listen": o.AdminListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: %w", name, addr, err))
		}
	}
	if o.OnRedisDown != "fail" && o.OnRedisDown != "local" {
		errs = append(errs, fmt.Errorf("--on-redis-down %q: want fail or local", o.OnRedisDown))
	}
	if o.Lease < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--lease %v: at least 100ms", o.Lease))
	}
	if o.ReloadInterval <= 0 || o.HeaderTimeout <= 0 || o.DrainTimeout < 0 {
		errs = append(errs, errors.New("--reload-interval and --header-timeout must be positive, --drain-timeout not negative"))
	}
	if _, _, err := o.connectPorts(); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.memoryLimit(); err != nil {
		errs = append(errs, err)
	}
	if o.Resolver != "" {
		if _, _, err := net.SplitHostPort(o.Resolver); err != nil {
			errs = append(errs, fmt.Errorf("--resolver %q: want host:port: %w", o.Resolver, err))
		}
	}
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.LogLevel))
	}
	return errors.Join(errs...)
}

// connectPorts parses --connect-ports: the ports, or any when "*".
func (o *Options) connectPorts() (ports []int, any bool, err error) {
	if strings.TrimSpace(o.ConnectPorts) == "*" {
		return nil, true, nil
	}
	for _, s := range strings.Split(o.ConnectPorts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 65535 {
			return nil, false, fmt.Errorf("--connect-ports: %q is not a port", s)
		}
		ports = append(ports, n)
	}
	return ports, false, nil
}

// memoryLimit parses --memory-limit: plain bytes (what a resourceFieldRef with divisor 1 gives) or a
// binary or decimal quantity (256Mi, 1G); 0 when unset.
func (o *Options) memoryLimit() (int64, error) {
	s := strings.TrimSpace(o.MemoryLimit)
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("--memory-limit %q: want bytes or a quantity like 256Mi", o.MemoryLimit)
	}
	return n * mult, nil
}
