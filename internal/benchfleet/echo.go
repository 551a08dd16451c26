package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// EchoServer is the trivial UDP echo server of the physical-limit
// measurement: it sends every datagram back to its sender, doing nothing
// else, so the rate it sustains is what the machine's UDP stack carries.
type EchoServer struct {
	conn   *net.UDPConn
	echoed atomic.Uint64
	failed atomic.Uint64
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// NewEchoServer listens on addr ("127.0.0.1:0" picks a free port) and starts
// readers goroutines that echo until Close.
func NewEchoServer(addr string, readers int) (*EchoServer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo server: resolve %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("echo server: listen on %q: %w", addr, err)
	}
	s := &EchoServer{conn: conn}
	for range max(readers, 1) {
		s.wg.Add(1)
		go func() { // exits when Close closes the socket
			defer s.wg.Done()
			s.serve()
		}()
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *EchoServer) Addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// Echoed returns how many datagrams were sent back; Failed how many could
// not be.
func (s *EchoServer) Echoed() uint64 { return s.echoed.Load() }

// Failed returns how many datagrams could not be sent back.
func (s *EchoServer) Failed() uint64 { return s.failed.Load() }

func (s *EchoServer) serve() {
	buf := make([]byte, 65536)
	for {
		n, addr, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an earlier send to a closed client
		}
		if _, err := s.conn.WriteToUDPAddrPort(buf[:n], addr); err != nil {
			s.failed.Add(1)
			continue
		}
		s.echoed.Add(1)
	}
}

// Close stops the server and waits for its goroutines. Calling it again
// returns the first call's result.
func (s *EchoServer) Close() error {
	s.once.Do(func() {
		if err := s.conn.Close(); err != nil {
			s.err = fmt.Errorf("echo server: close: %w", err)
		}
		s.wg.Wait()
	})
	return s.err
}

// echo runs the raw UDP echo client: Sensors sockets send stamped datagrams
// of PayloadSize octets to the echo server at Config.Gateway, flat out or at
// Rate each, and count what comes back.
func (r *run) echo(ctx context.Context) error {
	cfg := &r.cfg
	tr := NewTracker(cfg.Sensors, &r.lat, nil)
	conns := make([]*net.UDPConn, cfg.Sensors)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := r.dialUDP(i)
		if err != nil {
			return err
		}
		conns[i] = c
	}
	if cfg.Window > 0 {
		return r.echoWindowed(ctx, tr, conns)
	}
	var readers sync.WaitGroup
	for _, c := range conns {
		readers.Add(1)
		go func() { // exits when the socket is closed
			defer readers.Done()
			buf := make([]byte, cfg.PayloadSize+1)
			for {
				n, err := c.Read(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				tr.Deliver(buf[:n])
			}
		}()
	}
	defer func() {
		for i, c := range conns {
			c.Close()
			conns[i] = nil
		}
		readers.Wait()
	}()

	start := time.Now()
	tl := r.newTimeline(start)
	tr.SetTimeline(tl)
	var sent atomic.Uint64
	stop, release := stopAfter(ctx, cfg.Duration)
	defer release()
	total := int64(-1)
	if cfg.Count > 0 {
		total = int64(cfg.Count) * int64(cfg.Sensors)
	}
	r.prog.start("sending", total)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() { // exits after Count datagrams or when stop closes
			defer wg.Done()
			payload := r.fill()
			p := newPacer(cfg.Rate, start, i, cfg.Sensors)
			for seq := uint64(0); cfg.Count == 0 || seq < uint64(cfg.Count); seq++ {
				if !p.wait(stop) {
					return
				}
				now := time.Now()
				Stamp(payload, uint32(i), seq, now.UnixNano())
				if _, err := c.Write(payload); err != nil {
					r.errs.add(fmt.Errorf("echo socket %d: %w", i, err))
					continue
				}
				sent.Add(1)
				tl.Sent(now)
				r.prog.add(1)
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	r.drain(ctx, tr, sent.Load())
	r.finish(tr, tl, sent.Load(), 0, sent.Load(), start, end)
	r.note("echo: each datagram crosses the loopback twice (there and back); delivered is what came back")
	return nil
}

// echoWindowed is the closed-loop echo: each socket keeps Config.Window
// datagrams in flight, sending the next one when one comes back (or when
// none came back for echoTimeout, so a lost datagram does not stall it).
// It measures the rate the path sustains without overrunning any buffer.
func (r *run) echoWindowed(ctx context.Context, tr *Tracker, conns []*net.UDPConn) error {
	cfg := &r.cfg
	const echoTimeout = 200 * time.Millisecond
	self0 := selfCPU()
	start := time.Now()
	tl := r.newTimeline(start)
	tr.SetTimeline(tl)
	var sent atomic.Uint64
	stop, release := stopAfter(ctx, cfg.Duration)
	defer release()
	r.prog.start("sending", -1)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() { // exits after Count datagrams or when stop closes
			defer wg.Done()
			payload := r.fill()
			buf := make([]byte, cfg.PayloadSize+1)
			seq := uint64(0)
			send := func() bool {
				if cfg.Count > 0 && seq >= uint64(cfg.Count) {
					return false
				}
				now := time.Now()
				Stamp(payload, uint32(i), seq, now.UnixNano())
				seq++
				if _, err := c.Write(payload); err != nil {
					r.errs.add(fmt.Errorf("echo socket %d: %w", i, err))
					return true
				}
				sent.Add(1)
				tl.Sent(now)
				r.prog.add(1)
				return true
			}
			for range cfg.Window {
				send()
			}
			for {
				select {
				case <-stop:
					// Collect what is still in flight, then end.
					for {
						_ = c.SetReadDeadline(time.Now().Add(echoTimeout))
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						tr.Deliver(buf[:n])
					}
				default:
				}
				_ = c.SetReadDeadline(time.Now().Add(echoTimeout))
				n, err := c.Read(buf)
				if err == nil {
					tr.Deliver(buf[:n])
				} else if !errors.Is(err, os.ErrDeadlineExceeded) {
					r.errs.add(fmt.Errorf("echo socket %d: %w", i, err))
				}
				if !send() && err != nil {
					return // count reached and nothing more comes back
				}
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	r.setBenchCPU(self0, end.Sub(start))
	r.finish(tr, tl, sent.Load(), 0, sent.Load(), start, end)
	r.note(fmt.Sprintf("echo: closed loop, %d datagrams in flight per socket; each crosses the loopback twice", cfg.Window))
	return nil
}
