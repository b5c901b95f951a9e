package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rancher/ferry/bundle/verify/verifytest"
)

func TestServeRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	path := writeTemp(t, "b.tar", verifytest.NewFixture(1, 1024).Tar)
	for _, args := range [][]string{
		{"--addr", "0.0.0.0:0", path},
		{"--addr", ":0", path},
		{"--addr", "192.0.2.1:5000", path},
		{"--tls-cert", "c.pem", path},
	} {
		var errOut bytes.Buffer
		root := NewRootCmd()
		root.SetOut(io.Discard)
		root.SetErr(&errOut)
		if code := runWith(context.Background(), root, append([]string{"serve"}, args...)); code != 2 || errOut.Len() == 0 {
			t.Errorf("serve %v: exit %d, %q", args, code, errOut.String())
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:5000": true, "localhost:1": true, "[::1]:5000": true, "127.0.0.1": false, "10.0.0.1:5000": false} {
		if loopback(addr) != want {
			t.Errorf("loopback(%q) = %v", addr, !want)
		}
	}
}

// TestServeCmd starts `ferry serve` on a free port, pulls a manifest and
// stops it as SIGTERM would.
func TestServeCmd(t *testing.T) {
	f := verifytest.NewFixture(1, 1024)
	path := writeTemp(t, "b.tar", f.Tar)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	root := NewRootCmd()
	root.SetOut(pw)
	root.SetErr(io.Discard)
	exit := make(chan int, 1)
	go func() {
		exit <- runWith(ctx, root, []string{"serve", "--addr", "127.0.0.1:0", "--prefix", "mirror", path})
		pw.Close()
	}()
	var url string
	sc := bufio.NewScanner(pr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if u, ok := strings.CutPrefix(sc.Text(), "serving 2 repositories, 2 tags at "); ok {
			url = u
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if url == "" || !strings.HasPrefix(lines[0], "opened "+path+": 2 images") {
		t.Fatalf("start-up output: %q", lines)
	}
	resp, err := http.Get(url + "/v2/mirror/rancher/rke2-runtime/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, f.Images[0].Manifest) {
		t.Fatalf("manifest: %d %q", resp.StatusCode, body)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d after shutdown", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
