package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/redis/go-redis/v9"
)

// env is what the commands get from the process: variables and output.
type env struct {
	lookup         func(string) (string, bool)
	stdout, stderr io.Writer
}

const usage = `usage: %[1]s COMMAND [flags]

Commands:
  top              the busiest hosts across every sidecar sharing the Redis, refreshed live
  explain URL      why a request to URL would be allowed, wait or be refused right now
  hosts            the active hosts, most recently used first (for scripts)
  robots HOST      the cached robots.txt rules of HOST and when they expire

Every command takes --redis URL (redis://, rediss://, redis+sentinel://, redis+cluster://; default
$CRAWLPOLITE_REDIS; the password comes from $CRAWLPOLITE_REDIS_PASSWORD and is never printed) and
-o table|json. Run '%[1]s COMMAND -h' for a command's flags.
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, name string, args []string, e env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(e.stderr, usage, displayName(name))
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(context.Context, *common, []string) error{
		"top": cmdTop, "explain": cmdExplain, "hosts": cmdHosts, "robots": cmdRobots,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "%s: unknown command %q\n", displayName(name), args[0])
		fmt.Fprintf(e.stderr, usage, displayName(name))
		return 2
	}
	c := &common{env: e, plugin: strings.HasPrefix(name, "kubectl-"), name: displayName(name) + " " + args[0]}
	err := f(ctx, c, args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "%s: %v\n", c.name, err)
		return 2
	case ctx.Err() != nil:
		return 0
	}
	fmt.Fprintf(e.stderr, "%s: %v\n", c.name, err)
	return 1
}

var errUsage = errors.New("usage")

func displayName(argv0 string) string {
	if strings.HasPrefix(argv0, "kubectl-") {
		return "kubectl " + strings.TrimPrefix(argv0, "kubectl-")
	}
	return "crawlpolite"
}

// common holds the flags every command has and what they open.
type common struct {
	env
	plugin    bool
	name      string
	redisURL  string
	prefix    string
	output    string
	namespace string
	service   string
	close     []func()
}

func (c *common) flags(fs *flag.FlagSet) {
	def, _ := c.lookup("CRAWLPOLITE_REDIS")
	fs.StringVar(&c.redisURL, "redis", def, "Redis URL the sidecars share (default $CRAWLPOLITE_REDIS)")
	fs.StringVar(&c.prefix, "prefix", "crawlpolite", "key prefix of the sidecars' semaphore")
	fs.StringVar(&c.output, "o", "table", "output: table or json")
	if c.plugin {
		fs.StringVar(&c.namespace, "namespace", "crawlpolite", "without --redis: namespace of the chart's Redis service")
		fs.StringVar(&c.service, "redis-service", "crawlpolite-redis", "without --redis: the chart's Redis service to port-forward to")
	}
}

// parse parses fs and checks what every command checks.
func (c *common) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(c.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("%w: -o %q: want table or json", errUsage, c.output)
	}
	return nil
}

// redis connects to the sidecars' Redis: --redis, else as a kubectl plugin a port-forward to the
// chart's Redis service.
func (c *common) redis(ctx context.Context) (redis.UniversalClient, error) {
	url := c.redisURL
	if url == "" && c.plugin {
		addr, stop, err := portForward(ctx, c.namespace, c.service, c.stderr)
		if err != nil {
			return nil, err
		}
		c.close = append(c.close, stop)
		url = "redis://" + addr
	}
	if url == "" {
		return nil, fmt.Errorf("%w: no Redis: pass --redis URL or set CRAWLPOLITE_REDIS", errUsage)
	}
	password, _ := c.lookup("CRAWLPOLITE_REDIS_PASSWORD")
	rdb, err := connect(url, password)
	if err != nil {
		return nil, err
	}
	c.close = append(c.close, func() { _ = rdb.Close() })
	return rdb, nil
}

func (c *common) done() {
	for i := len(c.close) - 1; i >= 0; i-- {
		c.close[i]()
	}
}

func newFlags(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ContinueOnError) }
