package bundle

import (
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// Compression by content, the default for zstd (level 0): each zstdChunk
// of input is judged by trial-compressing a few samples of it. Input that
// does not compress (gzip and zstd layers, random data) goes to fast
// parallel frames exactly as at level 1. Input that does (uncompressed
// layers, as docker save writes them) goes to a stream at the strongest
// level with the largest window k3s and rke2 accept, which spans entries,
// because much of what it finds is repeated across layers (the same
// runtime in many binaries). Its frames hold at most strongFrame bytes, so
// a seekable reader finds any byte by decoding at most that much.
// Consecutive long-window frames are compressed at the same time, on up to
// maxStrongWorkers cores, when a directory to spill their input to is
// available (see zstdstrong.go); metadata frames are compressed inline.

const (
	// strongFrame is the most a long-window frame holds.
	strongFrame = 128 << 20
	// samples of sampleSize bytes each, spread over the input, are
	// trial-compressed; input compresses when they shrink below
	// compressesBelow percent.
	samples         = 4
	sampleSize      = 16 << 10
	compressesBelow = 90
	// metaWindow is the window of the metadata section's frames.
	metaWindow = 8 << 20
)

// strongStream writes long-window frames, counting what it writes and
// hashing what it reads for the seek table: one at a time straight to dst,
// or, with par set, each through a job of its own (see zstdstrong.go).
type strongStream struct {
	dst     io.Writer
	frame   int64         // the most input a frame holds: strongFrame
	par     *strongPar    // nil: every frame is compressed inline
	job     *strongJob    // the open frame's, when it is compressed by a job
	enc     *zstd.Encoder // made on first use
	metaEnc *zstd.Encoder // made on first use, for the metadata section
	cur     *zstd.Encoder // the open frame's: enc or metaEnc
	meta    bool          // frames begun now are metadata; set between frames
	sampler *zstd.Encoder
	scratch []byte
	out     int64 // bytes written to dst, for the frame's compressed size
	start   int64 // out when the frame began
	in      int64 // bytes compressed into the open frame
	hash    *xxhash.Digest
	open    bool
}

func newStrongStream(dst io.Writer, par *strongPar) (*strongStream, error) {
	sampler, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(sampleSize))
	if err != nil {
		return nil, err
	}
	return &strongStream{dst: dst, frame: strongFrame, par: par, sampler: sampler, hash: xxhash.New()}, nil
}

// parallel reports whether the next frame begun goes to a job: metadata
// frames are small and use their own encoder, so they stay inline.
func (s *strongStream) parallel() bool { return s.par != nil && !s.meta }

// wants reports whether b belongs in the long-window stream. Only a whole
// chunk is judged, and only a chunk that compresses starts a long-window
// frame: the rest of a chunk cut short (a tar header, a small file, the
// metadata) stays with the frame in progress, so small entries are framed
// exactly as at level 1 until a large one that compresses comes along.
func (s *strongStream) wants(b []byte) bool {
	if len(b) < zstdChunk {
		return s.open
	}
	return s.compresses(b)
}

func (s *strongStream) compresses(b []byte) bool {
	in, out := 0, 0
	for i := range samples {
		off := i * len(b) / samples
		sample := b[off:min(off+sampleSize, len(b))]
		s.scratch = s.sampler.EncodeAll(sample, s.scratch[:0])
		in, out = in+len(sample), out+len(s.scratch)
	}
	return out*100 < in*compressesBelow
}

// write compresses b into the open frame, or a new one if b would take
// the open one past s.frame bytes. Frame boundaries depend only on the
// input, never on how fast jobs run, so output is the same either way.
// begin is how a frame is begun: s.begin, or a job's start.
func (s *strongStream) write(b []byte, t *seekTable, begin func() error) error {
	if s.open && s.in+int64(len(b)) > s.frame {
		if err := s.end(t); err != nil {
			return err
		}
	}
	if !s.open {
		if err := begin(); err != nil {
			return err
		}
	}
	var err error
	if s.job != nil {
		err = s.job.append(b)
	} else {
		_, err = s.cur.Write(b)
	}
	if err != nil {
		return err
	}
	s.hash.Write(b)
	s.in += int64(len(b))
	return nil
}

func (s *strongStream) begin() error {
	enc, err := s.encoder()
	if err != nil {
		return err
	}
	s.cur = enc
	s.start, s.in, s.open = s.out, 0, true
	s.hash.Reset()
	return nil
}

// encoder is the encoder for a new frame, reset to write to s. The
// metadata section (index.json, manifest.json, manifests and configs) is
// JSON that repeats itself at short range, and it is all there is to
// compress in a bundle of many small images; the strongest level with the
// full window would hold its match tables and a history of twice the
// window for the whole run, which for thousands of images is more memory
// than everything else the bundle needs, for a few percent of output. Its
// lower-memory mode keeps a history of the window and one block, not twice
// the window; the output is the same.
func (s *strongStream) encoder() (*zstd.Encoder, error) {
	p, opts := &s.enc, []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(MaxZstdWindow), zstd.WithEncoderConcurrency(2)}
	if s.meta {
		p, opts = &s.metaEnc, []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithWindowSize(metaWindow), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true)}
	}
	if *p != nil {
		(*p).Reset(s)
		return *p, nil
	}
	enc, err := zstd.NewWriter(s, append(opts, zstd.WithEncoderCRC(true))...)
	if err != nil {
		return nil, err
	}
	*p = enc
	return enc, nil
}

// setMeta marks the frames begun from now on as metadata or not. The
// metadata section comes once, first: its encoder, whose history is most
// of what the metadata costs, is let go when it ends rather than held
// while the layers are written.
func (s *strongStream) setMeta(on bool) {
	s.meta = on
	if on || s.metaEnc == nil || (s.open && s.cur == s.metaEnc) {
		return
	}
	s.metaEnc.Close()
	if s.cur == s.metaEnc {
		s.cur = nil
	}
	s.metaEnc = nil
}

// end finishes the open frame, if any, and enters it in the seek table.
func (s *strongStream) end(t *seekTable) error {
	if !s.open {
		return nil
	}
	s.open = false
	if j := s.job; j != nil {
		s.job = nil
		j.finish(s.in, s.hash.Sum64())
		return nil
	}
	if err := s.cur.Close(); err != nil {
		return err
	}
	return t.add(s.out-s.start, s.in, s.hash.Sum64())
}

// close releases the encoders; the stream must have no open frame, and
// no job running.
func (s *strongStream) close() {
	if s.par != nil {
		s.par.close()
	}
	s.sampler.Close()
	for _, e := range []*zstd.Encoder{s.enc, s.metaEnc} {
		if e != nil {
			e.Close()
		}
	}
}

// Write is where the encoder's output goes.
func (s *strongStream) Write(p []byte) (int, error) {
	n, err := s.dst.Write(p)
	s.out += int64(n)
	return n, err
}
