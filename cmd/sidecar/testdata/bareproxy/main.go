// Command bareproxy is the proxy benchmark's floor: Go's httputil.ReverseProxy as a forward proxy
// with nothing else (no politeness, no guard, no metrics), on the same pooled transport settings as
// the sidecar. It prints its address on stdout.
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.RequestURI = "" },
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	_ = http.Serve(l, rp)
}
