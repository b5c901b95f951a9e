package registrytest

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// Server is an in-memory registry served over plain HTTP on loopback, for
// the demo and tests. It is never reachable from another host.
type Server struct {
	// Host is 127.0.0.1:port, to prefix image references with.
	Host string
	srv  *http.Server
	done chan error
}

// ServeMemory starts an empty in-memory registry on 127.0.0.1.
func ServeMemory() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	s := &Server{
		Host: ln.Addr().String(),
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server at once. A graceful Shutdown would wait up to
// five seconds for connections that clients opened but never used.
func (s *Server) Close() error {
	err := s.srv.Close()
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
