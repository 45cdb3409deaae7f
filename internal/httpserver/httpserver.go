// Package httpserver runs an HTTP server that strangers can reach: every
// connection has read, write and idle deadlines, and the number of open
// connections is bounded, in total and per client address, so that one
// client holding many idle keep-alive connections cannot use up the file
// descriptors and lock everyone else out.
//
// [Serve] runs a handler on a listener until its context is done, then
// shuts down gracefully. The log server (`pyrsia-build log serve`) uses it,
// and so will the node daemon.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configure [Serve]. Zero fields take the defaults below.
type Options struct {
	// ReadHeaderTimeout bounds reading a request's header (default 10s);
	// ReadTimeout the whole request (default 30s); WriteTimeout writing the
	// response (default 60s); IdleTimeout how long a keep-alive connection
	// may wait for its next request (default 60s).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (default 16 KiB).
	MaxHeaderBytes int
	// MaxConns bounds the open connections (default 4096): past it, Accept
	// waits for one to close.
	MaxConns int
	// MaxConnsPerClient bounds the open connections from one IP address
	// (default 64): past it, new connections from that address are closed
	// at once.
	MaxConnsPerClient int
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// Logger receives the server's errors (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 10*time.Second)
	def(&o.ReadTimeout, 30*time.Second)
	def(&o.WriteTimeout, 60*time.Second)
	def(&o.IdleTimeout, 60*time.Second)
	def(&o.ShutdownTimeout, 10*time.Second)
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 16 << 10
	}
	if o.MaxConns == 0 {
		o.MaxConns = 4096
	}
	if o.MaxConnsPerClient == 0 {
		o.MaxConnsPerClient = 64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Serve serves h on ln until ctx is done, then shuts the server down: it
// stops accepting, finishes the requests in flight (for up to
// ShutdownTimeout) and closes ln. It returns nil after a shutdown, and the
// error that stopped the server otherwise.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opts Options) error {
	opts.setDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	lim := Limit(ln, opts.MaxConns, opts.MaxConnsPerClient)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lim) }()
	select {
	case err := <-errc:
		return fmt.Errorf("httpserver: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && serr != nil {
		return fmt.Errorf("httpserver: serving on %s: %w", ln.Addr(), serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("httpserver: shutting down: %w", err)
	}
	return nil
}

// Limit returns a listener that keeps at most total connections of ln open
// (Accept waits for one to close) and at most perClient from one IP address
// (more are closed as soon as they are accepted).
func Limit(ln net.Listener, total, perClient int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, total), done: make(chan struct{}),
		perClient: perClient, byClient: make(map[string]int)}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	perClient int

	mu       sync.Mutex
	byClient map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		client := clientOf(c.RemoteAddr())
		l.mu.Lock()
		ok := l.byClient[client] < l.perClient
		if ok {
			l.byClient[client]++
		}
		l.mu.Unlock()
		if !ok {
			c.Close()
			<-l.sem
			continue
		}
		return &limitConn{Conn: c, release: func() { l.release(client) }}, nil
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) release(client string) {
	l.mu.Lock()
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
	l.mu.Unlock()
	<-l.sem
}

// clientOf is the client a remote address counts as: its IPv4 address, the
// /64 of an IPv6 address (one host routes a whole /64, so per address it
// would count as 2^64 clients), or the whole address for other networks.
func clientOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip4 := ta.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		if ip6 := ta.IP.To16(); ip6 != nil {
			return (&net.IPNet{IP: ip6.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
		}
		return ta.IP.String()
	}
	return a.String()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
