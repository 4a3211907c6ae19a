package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/crawlpolite/crawlpolite/internal/proxy"
	"github.com/crawlpolite/crawlpolite/internal/throttle"
	"github.com/crawlpolite/crawlpolite/pkg/robots"
	"github.com/crawlpolite/crawlpolite/pkg/semaphore"
)

// signalContext is cancelled by the first SIGTERM or SIGINT; a second one exits at once.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ch
		cancel()
		<-ch
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// run serves until ctx ends or POST /quitquitquit, then drains.
func run(ctx context.Context, o Options) error {
	log := newLogger(o.LogLevel)
	pol, polData, err := loadPolicy(o.PolicyFile)
	if err != nil {
		return err
	}
	// Listen first: the guard must know the ports to refuse (a crawled link to the sidecar itself).
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	adminLn, err := net.Listen("tcp", o.AdminListen)
	if err != nil {
		return err
	}
	defer adminLn.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	robotsBytes := applyMemoryLimit(o, log)
	rdb, err := newRedis(o.Redis, o.RedisPassword)
	if err != nil {
		return err
	}
	sem, fallback, err := newSemaphores(rdb, o)
	if err != nil {
		return err
	}
	guard, err := proxy.NewGuard(o.AllowCIDR)
	if err != nil {
		return err
	}
	if err := guard.DenySelf(listenPort(ln), listenPort(adminLn)); err != nil {
		return err
	}
	ports, anyPort, _ := o.connectPorts()
	popts := proxy.Options{ConnectPorts: ports, AnyConnectPort: anyPort, ReadHeaderTimeout: o.HeaderTimeout}
	if o.Resolver != "" {
		popts.Resolver = proxy.ResolverAt(o.Resolver)
	}
	up := proxy.NewUpstream(popts, guard)
	var srv *proxy.Server // set below, before anything is served
	fetcher := &robots.Fetcher{Client: up.Client(), UserAgent: o.UserAgent}
	var robotsStore robots.Store // shared with the other sidecars through Redis, when there is one
	if rc := newRobotsRedis(rdb); rc != nil {
		robotsStore = robots.NewRedisStore(rc, "")
	}
	cache := robots.NewCache(fetcher, robots.CacheOptions{Store: robotsStore, MaxBytes: robotsBytes,
		OnPanic: func(v any) { srv.RecordPanic("robots", v) }})
	thr, err := throttle.New(sem, fallback, cache, pol, log, reg)
	if err != nil {
		return err
	}
	fetcher.Gate = thr.RobotsGate // robots.txt fetches and their redirects take turns too
	thr.UseResolver(up.Resolve)   // groupBy: ip groups by the address the proxy will dial
	if h := healthOf(rdb); h != nil {
		thr.UseHealth(h)
	}
	ca, err := proxy.NewCA()
	if err != nil {
		return err
	}
	if o.CADir != "" {
		if err := ca.WriteFiles(o.CADir); err != nil {
			return err
		}
	}
	if srv, err = proxy.New(popts, thr, ca, up, log, reg); err != nil {
		return err
	}
	token, err := writeQuitToken(o.CADir)
	if err != nil {
		return err
	}
	adm := newAdmin(reg, rdb, semOptions(o), fallback != nil, thr, token)
	adminSrv := &http.Server{Handler: adm.mux(), ReadHeaderTimeout: 5 * time.Second}

	var wg sync.WaitGroup
	serve := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("server stopped", "server", name, "error", err.Error())
			}
		}()
	}
	serve("proxy", func() error { return srv.Serve(ln) })
	serve("admin", func() error { return adminSrv.Serve(adminLn) })
	wctx, stopWatch := context.WithCancel(ctx)
	go watchPolicy(wctx, o.PolicyFile, o.ReloadInterval, polData, thr, log)
	pubCtx, stopPublish := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPublish()
	published := closedChan()
	if rdb != nil {
		published = publishHosts(pubCtx, o, thr.Hosts(), log)
	}
	log.Info("serving", "version", version, "listen", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"backend", redisTarget(o.Redis), "on_redis_down", o.OnRedisDown, "ca_dir", o.CADir)

	select {
	case <-ctx.Done():
		log.Info("draining", "cause", "signal", "timeout", o.DrainTimeout.String())
	case <-adm.quit:
		log.Info("draining", "cause", "quitquitquit", "timeout", o.DrainTimeout.String())
	}
	stopWatch()
	adm.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Warn("drain cut short", "error", err.Error())
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	_ = thr.WaitReleases(rctx)
	stopPublish()
	<-published // its last report, with the requests drained, clears this sidecar's load
	_ = sem.Close()
	if fallback != nil {
		_ = fallback.Close()
	}
	_ = adminSrv.Shutdown(rctx)
	wg.Wait()
	if rdb != nil {
		_ = rdb.Close()
	}
	log.Info("stopped")
	return nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// semOptions are the semaphores' options (/state's Observer reads with them too).
func semOptions(o Options) semaphore.Options { return semaphore.Options{Lease: o.Lease} }

// newSemaphores returns the semaphore turns come from, and the in-process fallback when Redis is
// shared and --on-redis-down=local.
func newSemaphores(rdb redis.UniversalClient, o Options) (sem, fallback *semaphore.Semaphore, err error) {
	opts := semOptions(o)
	if rdb == nil {
		sem, err = semaphore.NewLocal(opts)
		return sem, nil, err
	}
	if sem, err = semaphore.NewRedis(rdb, opts); err != nil {
		return nil, nil, err
	}
	if o.OnRedisDown == "local" {
		if fallback, err = semaphore.NewLocal(opts); err != nil {
			return nil, nil, err
		}
	}
	return sem, fallback, nil
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func listenPort(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// applyMemoryLimit sets the Go memory limit to 80% of --memory-limit (the container's, injected with a
// resourceFieldRef), leaving room for what the runtime does not count, unless GOMEMLIMIT is set; it
// returns the robots cache budget, an eighth of the limit (0: the cache's default).
func applyMemoryLimit(o Options, log *slog.Logger) (robotsBytes int) {
	limit, _ := o.memoryLimit() // validated
	if limit <= 0 {
		return 0
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(limit / 10 * 8)
	}
	robotsBytes = int(min(limit/8, 1<<30))
	log.Debug("memory limit", "container", limit, "go", debug.SetMemoryLimit(-1), "robots_cache", robotsBytes)
	return robotsBytes
}
