package bundle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/reorder/tempfile"
)

// Long-window frames compressed in parallel. One strongest-level encoder
// finds matches on one core (its concurrency only overlaps entropy coding),
// so consecutive frames are compressed at the same time, each by a job with
// its own encoder. A job's frame is the same bytes an inline encoder makes
// of the same input (every frame starts from a Reset), so output does not
// change with the number of jobs.
//
// The input arrives by push, and must not wait on the encoder of the frame
// before it, so each frame's input goes to a spill file that its job reads
// as it grows. The oldest frame in flight writes its output straight to
// dst; a later one's goes to a second spill file until the frames before
// it are written. Spill files are created beside the output (or in
// os.TempDir() when the caller names no directory, such as when writing to
// stdout) and unlinked at once, so that a killed run leaves nothing behind
// where the system allows that; otherwise they carry tempfile's tag, and
// the next run's Sweep removes them.

// maxStrongWorkers caps the frames compressed at once. Each job holds an
// encoder at the strongest level, with match tables and a history of at
// least the whole window (strongOptions), and each frame in flight keeps up
// to strongFrame bytes of input in the page cache: two use both cores of a
// small machine, and more would multiply that memory on large ones for
// inputs that rarely span more than a few frames.
const maxStrongWorkers = 2

// strongSpillPattern names the spill files; tempfile.Sweep removes those
// of runs that died before unlinking them.
const strongSpillPattern = ".ferry-zstd-*.tmp"

// errAborted is what jobs stopped by Abort return.
var errAborted = errors.New("zstd compression aborted")

// strongPar runs the jobs. Only the writing goroutine calls its methods;
// jobs share dir, abort, idle and wg.
type strongPar struct {
	dir     string
	workers int
	abort   chan struct{} // closed to stop every job
	stopped bool
	idle    chan *zstd.Encoder // encoders not in use; at most workers exist
	swept   bool
	jobs    []*strongJob // in flight, oldest first
	wg      sync.WaitGroup
}

// newStrongPar returns nil, for inline compression, when fewer than two
// jobs could run at once.
func newStrongPar(dir string, workers int) *strongPar {
	if workers < 2 {
		return nil
	}
	if dir == "" {
		dir = os.TempDir()
	}
	return &strongPar{dir: dir, workers: workers, abort: make(chan struct{}), idle: make(chan *zstd.Encoder, workers)}
}

// inFlight is the number of jobs not yet done.
func (sp *strongPar) inFlight() int {
	keep := sp.jobs[:0]
	for _, j := range sp.jobs {
		select {
		case <-j.done:
		default:
			keep = append(keep, j)
		}
	}
	clear(sp.jobs[len(keep):])
	sp.jobs = keep
	return len(keep)
}

// spill creates an unlinked temp file in sp.dir, the first time after
// removing those of dead runs.
func (sp *strongPar) spill() (*spillFile, error) {
	if !sp.swept {
		sp.swept = true
		_, _ = tempfile.Sweep(sp.dir, strongSpillPattern)
	}
	return createSpill(sp.dir)
}

// createSpill is spill without the sweep, for jobs: spill has run before
// any job starts.
func createSpill(dir string) (*spillFile, error) {
	f, err := tempfile.Create(dir, strongSpillPattern)
	if err != nil {
		return nil, fmt.Errorf("spilling a zstd frame in %s: %w", dir, err)
	}
	// Where an open file cannot be unlinked (Windows), it is removed on
	// close instead.
	return &spillFile{File: f, linked: os.Remove(f.Name()) != nil}, nil
}

// stop stops every job and waits for them.
func (sp *strongPar) stop() {
	if !sp.stopped {
		sp.stopped = true
		close(sp.abort)
	}
	sp.wg.Wait()
}

// close releases the encoders once every job has ended.
func (sp *strongPar) close() {
	sp.wg.Wait()
	for {
		select {
		case enc := <-sp.idle:
			enc.Close()
		default:
			return
		}
	}
}

// encoder is an idle encoder reset to write to w, or a new one. There are
// never more than sp.workers jobs, so never more encoders.
func (sp *strongPar) encoder(w io.Writer) (*zstd.Encoder, error) {
	select {
	case enc := <-sp.idle:
		enc.Reset(w)
		return enc, nil
	default:
	}
	return zstd.NewWriter(w, strongOptions()...)
}

type spillFile struct {
	*os.File
	linked bool
}

func (f *spillFile) release() {
	f.Close()
	if f.linked {
		os.Remove(f.Name())
	}
}

// strongJob compresses one frame. The writing goroutine appends its input
// and finishes it; the job's goroutine reads the input as it comes (Read),
// and is the only one to touch the output side (Write).
type strongJob struct {
	par   *strongPar
	p     *parallelZstd
	in    *spillFile
	prev  chan struct{} // closed when the frame before is written; nil if none
	done  chan struct{} // closed when this frame is written and entered
	more  chan struct{} // a token whenever input is appended or finished
	fill  atomic.Int64  // input bytes spilled
	ended atomic.Bool   // set once size and sum are
	size  int64
	sum   uint64

	read int64      // input bytes read
	out  int64      // compressed bytes written
	held *spillFile // output held until the frames before are written
	head bool       // output goes to dst
}

// beginJob starts a job for the next long-window frame, once fewer than
// the cap are in flight. Frames are written in order: a job waits for the
// frame, fast or long, submitted before it.
func (p *parallelZstd) beginJob() error {
	sp, s := p.auto.par, p.auto
	for sp.inFlight() >= sp.workers && p.err == nil {
		p.waitOldest()
	}
	if p.err != nil {
		return p.err
	}
	in, err := sp.spill()
	if err != nil {
		return err
	}
	j := &strongJob{par: sp, p: p, in: in, done: make(chan struct{}), more: make(chan struct{}, 1)}
	if n := len(p.pending); n > 0 {
		j.prev = p.pending[n-1]
	}
	p.pending = append(p.pending, j.done)
	sp.jobs = append(sp.jobs, j)
	s.job, s.start, s.in, s.open = j, 0, 0, true
	s.hash.Reset()
	sp.wg.Add(1)
	go j.run()
	return nil
}

func (j *strongJob) append(b []byte) error {
	if _, err := j.in.Write(b); err != nil {
		return fmt.Errorf("spilling a zstd frame: %w", err)
	}
	j.fill.Add(int64(len(b)))
	j.signal()
	return nil
}

// finish ends the frame's input.
func (j *strongJob) finish(size int64, sum uint64) {
	j.size, j.sum = size, sum
	j.ended.Store(true)
	j.signal()
}

func (j *strongJob) signal() {
	select {
	case j.more <- struct{}{}:
	default:
	}
}

// Read reads the frame's input from its spill file, waiting for more
// until the frame is finished or the job is stopped.
func (j *strongJob) Read(b []byte) (int, error) {
	for {
		ended := j.ended.Load() // before fill: fill is final once ended is set
		if n := j.fill.Load(); j.read < n {
			k, err := j.in.ReadAt(b[:min(int64(len(b)), n-j.read)], j.read)
			j.read += int64(k)
			if k > 0 && errors.Is(err, io.EOF) {
				err = nil
			}
			return k, err
		}
		if ended {
			return 0, io.EOF
		}
		select {
		case <-j.more:
		case <-j.par.abort:
			return 0, errAborted
		}
	}
}

// Write takes the encoder's output: to dst once every frame before is
// written, to the held file until then.
func (j *strongJob) Write(b []byte) (int, error) {
	select {
	case <-j.par.abort:
		return 0, errAborted
	default:
	}
	if !j.head && j.prevWritten() {
		if err := j.promote(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	if j.head {
		n, err = j.p.dst.Write(b)
	} else {
		if j.held == nil {
			if j.held, err = createSpill(j.par.dir); err != nil {
				return 0, err
			}
		}
		n, err = j.held.Write(b)
	}
	j.out += int64(n)
	return n, err
}

func (j *strongJob) prevWritten() bool {
	if j.prev == nil {
		return true
	}
	select {
	case <-j.prev:
		return true
	default:
		return false
	}
}

// promote writes the held output to dst; from then on output goes there.
func (j *strongJob) promote() error {
	j.head = true
	if j.held == nil {
		return nil
	}
	defer func() { j.held.release(); j.held = nil }()
	if _, err := j.held.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reading back a zstd frame: %w", err)
	}
	_, err := io.Copy(j.p.dst, j.held.File)
	return err
}

// run compresses the frame, waits for the frames before it, writes what
// it held back and enters the frame in the seek table. The first error of
// any frame is kept in p.failure, where the writing goroutine finds it.
func (j *strongJob) run() {
	defer j.par.wg.Done()
	err := j.compress()
	if err == nil && j.prev != nil {
		select {
		case <-j.prev:
		case <-j.par.abort:
			err = errAborted
		}
	}
	if err == nil && !j.head {
		err = j.promote()
	}
	p := j.p
	p.mu.Lock()
	if err == nil && p.failure == nil {
		err = p.table.add(j.out, j.size, j.sum)
	}
	if p.failure == nil {
		p.failure = err
	}
	p.mu.Unlock()
	j.in.release()
	if j.held != nil {
		j.held.release()
	}
	close(j.done)
}

func (j *strongJob) compress() error {
	enc, err := j.par.encoder(j)
	if err != nil {
		return err
	}
	defer func() { j.par.idle <- enc }()
	if _, err := enc.ReadFrom(j); err != nil {
		return err
	}
	return enc.Close()
}
