package main

import (
	"bytes"
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
	// mu keeps a note from being cut by another, or by a redraw.
	mu sync.Mutex
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
		total := p.total.Load()
		if total <= 0 {
			total = -1
		}
		p.bar = progressbar.NewOptions64(total,
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
		p.mu.Lock()
		p.bar.ChangeMax64(n)
		p.mu.Unlock()
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
			p.mu.Lock()
			fmt.Fprintf(p.out, "%s: %s / %s\n", p.desc, humanBytes(p.done.Load()), humanBytes(p.total.Load()))
			p.mu.Unlock()
		}
	}
}

func (p *byteProgress) Write(b []byte) (int, error) {
	p.done.Add(int64(len(b)))
	if p.bar != nil {
		p.mu.Lock()
		_ = p.bar.Add(len(b))
		p.mu.Unlock()
	}
	return len(b), nil
}

// note prints a line without garbling the bar: the bar's line is cleared
// first, and the bar draws itself again below the note.
func (p *byteProgress) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.out, s)
	if p.bar != nil {
		_ = p.bar.RenderBlank()
	}
}

// warnings is a writer for a library's warnings (registry.WithWarnings)
// that prints each line as a note, so warnings never overwrite the bar.
func (p *byteProgress) warnings() io.Writer { return &noteWriter{p: p} }

type noteWriter struct {
	p   *byteProgress
	mu  sync.Mutex
	buf []byte
}

func (w *noteWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.p.note(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
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
