package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// byteProgress shows download progress: a bar on a terminal, a line every
// few seconds otherwise (CI logs), nothing with --quiet.
type byteProgress struct {
	out   io.Writer
	desc  string
	tty   bool
	bar   *progressbar.ProgressBar
	done  atomic.Int64
	total atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newByteProgress(out io.Writer, desc string) *byteProgress {
	return &byteProgress{out: out, desc: desc, tty: out != io.Discard && isTerminal(out)}
}

// start shows progress; the total grows with SetTotal as images resolve.
func (p *byteProgress) start() {
	if p.out == io.Discard {
		return
	}
	if p.tty {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(p.out.(*os.File)),
			progressbar.OptionSetDescription(p.desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		return
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go p.lines()
}

// SetTotal records how many bytes are to be fetched so far.
func (p *byteProgress) SetTotal(n int64) {
	p.total.Store(n)
	if p.bar != nil {
		p.bar.ChangeMax64(n)
	}
}

func (p *byteProgress) lines() {
	defer p.wg.Done()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			fmt.Fprintf(p.out, "%s: %s / %s\n", p.desc, humanBytes(p.done.Load()), humanBytes(p.total.Load()))
		}
	}
}

func (p *byteProgress) Write(b []byte) (int, error) {
	p.done.Add(int64(len(b)))
	if p.bar != nil {
		_ = p.bar.Add(len(b))
	}
	return len(b), nil
}

// note prints a line without garbling the bar.
func (p *byteProgress) note(s string) {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.out, s)
}

func (p *byteProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
		p.stop = nil
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func fileSize(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return humanBytes(fi.Size())
}
