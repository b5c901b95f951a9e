// Command faultsrv runs the fault suite's servers on loopback:
//
//	faultsrv proxy -upstream https://127.0.0.1:5000 -ca ca.pem -cert c.pem -key k.pem -rate 0.1 -seed 7
//	faultsrv hostile -cert c.pem -key k.pem
//	faultsrv plain
//
// Each prints the address(es) it listens on as its first line, logs to
// stderr and runs until killed. plain is a registry without TLS that asks
// for basic auth and logs every request and whether it carried
// credentials.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rancher/ferry/registry/internal/faultproxy"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: faultsrv proxy|hostile|plain [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	upstream := fs.String("upstream", "", "registry to forward to (proxy)")
	ca := fs.String("ca", "", "CA the upstream's certificate is signed by (proxy)")
	cert := fs.String("cert", "", "TLS certificate to serve")
	key := fs.String("key", "", "TLS key to serve")
	rate := fs.Float64("rate", 0.1, "share of requests given a fault (proxy)")
	seed := fs.Uint64("seed", 1, "fault seed (proxy)")
	stall := fs.Duration("stall", 30*time.Second, "how long stalls last")
	addr := fs.String("listen", "127.0.0.1:0", "loopback address to listen on (proxy)")
	_ = fs.Parse(os.Args[2:])
	logger := log.New(os.Stderr, "", log.Lmicroseconds)
	switch os.Args[1] {
	case "proxy":
		u, err := url.Parse(*upstream)
		if err != nil || u.Host == "" {
			log.Fatalf("-upstream %q: %v", *upstream, err)
		}
		p := &faultproxy.Proxy{Upstream: u, Transport: upstreamTransport(*ca), Rate: *rate, Seed: *seed, Stall: *stall, Log: logger}
		ln := listenOn(*addr)
		fmt.Println(ln.Addr())
		go func() { waitSignal(); logger.Printf("faults: %v", p.Counts()); os.Exit(0) }()
		serveTLS(ln, p, *cert, *key)
	case "hostile":
		tlsLn, plainLn := listen(), listen()
		h := &faultproxy.Hostile{Self: tlsLn.Addr().String(), HTTPSelf: plainLn.Addr().String(), Stall: *stall}
		fmt.Printf("%s %s\n", h.Self, h.HTTPSelf)
		go func() { log.Fatal(http.Serve(plainLn, h)) }()
		serveTLS(tlsLn, h, *cert, *key)
	case "plain":
		ln := listen()
		fmt.Println(ln.Addr())
		log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _, creds := r.BasicAuth()
			logger.Printf("request %s %s credentials=%v", r.Method, r.URL.Path, creds || r.Header.Get("Authorization") != "")
			if !creds {
				w.Header().Set("WWW-Authenticate", `Basic realm="plain"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			http.NotFound(w, r)
		})))
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

func listen() net.Listener { return listenOn("127.0.0.1:0") }

// listenOn listens on a loopback address only.
func listenOn(addr string) net.Listener {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		log.Fatalf("-listen %q: loopback only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	return ln
}

func serveTLS(ln net.Listener, h http.Handler, cert, key string) {
	// HTTP/1.1 only, so faults can take the connection over.
	srv := &http.Server{Handler: h, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	log.Fatal(srv.ServeTLS(ln, cert, key))
}

func upstreamTransport(ca string) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			log.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return t
}

func waitSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	<-c
}
