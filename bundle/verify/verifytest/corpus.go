package verifytest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/reorder/tarscan"
)

// Case is one archive for Verify and what the verdict must be.
type Case struct {
	Name             string
	Data             []byte
	Strict, AllowExt bool
	// WantOK is true for archives that must verify (warnings allowed).
	WantOK bool
	// Check is a check that must fail; Mention must appear in one failed
	// check of that name (entry, message, expected or found).
	Check, Mention string
	// Reject, when set, is the tarscan sentinel every ferry reader (list,
	// Open, verify, reorder) must refuse the archive with: a fault in the
	// tar itself, or an archive over tarscan's limits. Verify reports it as
	// Check. Cases without it are either valid for every reader (WantOK) or
	// break only what verify alone checks: digests, sizes, and whether the
	// metadata agrees with itself and with the blobs.
	Reject error
}

// Zstd compresses b; opts replace the defaults.
func Zstd(b []byte, opts ...zstd.EOption) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		panic(err)
	}
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// Gzip compresses b as one gzip member.
func Gzip(b []byte) []byte { return GzipLayer(b).Blob }

func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x10
	return c
}

// Corpus returns the valid archives and the malformed ones.
func Corpus() []Case {
	f := NewFixture(1, 32<<10)
	var cases []Case
	cases = append(cases, validCases(f)...)
	cases = append(cases, streamCases(f)...)
	cases = append(cases, structureCases(f)...)
	cases = append(cases, integrityCases(f)...)
	cases = append(cases, metadataCases(f)...)
	cases = append(cases, otherFormatCases()...)
	cases = append(cases, readerCases(f)...)
	return cases
}

func validCases(f *Fixture) []Case {
	es := Entries(f.Tar)
	idx := Find(es, bundle.IndexFile)
	late := append(append(append([]Entry(nil), es[:idx]...), es[idx+1:]...), es[idx])
	extra := Tar(append(append([]Entry(nil), es...), Reg("notes.txt", []byte("hello"))))
	return []Case{
		{Name: "valid", Data: f.Tar, WantOK: true},
		{Name: "valid zstd", Data: Zstd(f.Tar), WantOK: true},
		{Name: "valid gzip", Data: Gzip(f.Tar), WantOK: true},
		{Name: "metadata last, not strict", Data: Tar(late), WantOK: true},
		{Name: "metadata last, strict", Data: Tar(late), Strict: true, Check: "order", Mention: bundle.IndexFile},
		{Name: "extra file allowed", Data: extra, AllowExt: true, WantOK: true},
	}
}

// streamCases break the byte stream itself: truncation, garbage, codecs.
func streamCases(f *Fixture) []Case {
	layerAt := HeaderOffset(f.Tar, f.Layer) + 512 + 1000
	zst := Zstd(f.Tar)
	gz := Gzip(f.Tar)
	garbage := make([]byte, 4096)
	rand.New(rand.NewSource(7)).Read(garbage)
	gzBadCRC := bytes.Clone(gz)
	gzBadCRC[len(gzBadCRC)-6] ^= 0xff
	badSum := bytes.Clone(f.Tar)
	badSum[HeaderOffset(f.Tar, f.Layer)+148] ^= 0x01 // the header checksum field
	return []Case{
		{Name: "empty file", Data: nil, Check: "archive", Mention: "empty", Reject: tarscan.ErrTruncated},
		{Name: "empty tar", Data: make([]byte, 1024), Check: "archive", Mention: "empty"},
		{Name: "random bytes", Data: garbage, Check: "archive", Mention: "not a tar", Reject: tarscan.ErrMalformed},
		{Name: "truncated in first header", Data: f.Tar[:100], Check: "archive", Mention: "truncated", Reject: tarscan.ErrTruncated},
		{Name: "truncated in index.json", Data: f.Tar[:512*3+20], Check: "archive", Mention: "truncated in entry index.json", Reject: tarscan.ErrTruncated},
		{Name: "truncated in a layer", Data: f.Tar[:layerAt], Check: "archive", Mention: "truncated in entry " + f.Layer, Reject: tarscan.ErrTruncated},
		{Name: "truncated zstd", Data: zst[:len(zst)*6/10], Check: "archive", Mention: "truncated", Reject: tarscan.ErrTruncated},
		{Name: "truncated gzip", Data: gz[:len(gz)/2], Check: "archive", Mention: "truncated", Reject: tarscan.ErrTruncated},
		{Name: "gzip checksum wrong", Data: gzBadCRC, Check: "archive", Mention: "checksum"},
		{Name: "zstd window over 32 MiB", Data: BigWindow(f.Tar), Check: "archive", Mention: "zstd window"},
		{Name: "corrupt tar header checksum", Data: badSum, Check: "archive", Mention: "unreadable", Reject: tarscan.ErrMalformed},
	}
}

func structureCases(f *Fixture) []Case {
	es := Entries(f.Tar)
	with := func(more ...Entry) []byte { return Tar(append(append([]Entry(nil), es...), more...)) }
	link := func(name, target string, typ byte) Entry {
		return Entry{Hdr: tar.Header{Name: name, Linkname: target, Typeflag: typ, Mode: 0o777}}
	}
	dev := Entry{Hdr: tar.Header{Name: "dev/console", Typeflag: tar.TypeChar, Devmajor: 5, Devminor: 1, Mode: 0o600}}
	fifo := Entry{Hdr: tar.Header{Name: "pipe", Typeflag: tar.TypeFifo, Mode: 0o600}}
	longName := strings.Repeat("deep/", 1700) + "file"
	dupIndex := Reg(bundle.IndexFile, []byte(`{"schemaVersion":2,"manifests":[]}`))
	hardLinked := hardLinkLayer(es, f.Layer)
	layout := append([]Entry(nil), es...)
	layout[Find(layout, bundle.OCILayoutFile)] = Reg(bundle.OCILayoutFile, []byte(`{"imageLayoutVersion":"2.0.0"}`))
	return []Case{
		{Name: "hard-linked layer", Data: hardLinked, WantOK: true},
		{Name: "hard-linked layer, strict", Data: hardLinked, Strict: true, Check: "hardlink", Mention: "skopeo, podman"},
		{Name: "unknown oci-layout version", Data: Tar(layout), Check: "oci-layout", Mention: `"2.0.0"`},
		{Name: "newline in a name", Data: with(Reg("notes\nok   fake", []byte("x"))), Check: "extra", Mention: `notes\nok   fake`},
		{Name: "dot-dot path", Data: with(Reg("../evil", []byte("x"))), Check: "path", Mention: "../evil", Reject: tarscan.ErrUnsafePath},
		{Name: "absolute path", Data: with(Reg("/etc/evil", []byte("x"))), Check: "path", Mention: "/etc/evil", Reject: tarscan.ErrUnsafePath},
		{Name: "symlink out", Data: with(link("blobs/escape", "../../etc/passwd", tar.TypeSymlink)), Check: "link", Mention: "blobs/escape", Reject: tarscan.ErrUnsafeLink},
		{Name: "absolute symlink", Data: with(link("abs", "/etc/passwd", tar.TypeSymlink)), Check: "link", Mention: "abs", Reject: tarscan.ErrUnsafeLink},
		{Name: "hardlink out", Data: with(link("hl", "/etc/passwd", tar.TypeLink)), Check: "link", Mention: "hl", Reject: tarscan.ErrUnsafeLink},
		{Name: "hardlink dot-dot", Data: with(link("hl2", "../x", tar.TypeLink)), Check: "link", Mention: "hl2", Reject: tarscan.ErrUnsafeLink},
		{Name: "dangling hardlink", Data: with(link("hl3", "blobs/sha256/none", tar.TypeLink)), Check: "link", Mention: "hl3", Reject: tarscan.ErrUnsafeLink},
		{Name: "character device", Data: with(dev), Check: "type", Mention: "dev/console", Reject: tarscan.ErrUnsupportedType},
		{Name: "named pipe", Data: with(fifo), Check: "type", Mention: "pipe", Reject: tarscan.ErrUnsupportedType},
		{Name: "duplicate layer", Data: with(es[Find(es, f.Layer)]), Check: "duplicate", Mention: f.Layer, Reject: tarscan.ErrDuplicate},
		{Name: "duplicate index.json", Data: with(dupIndex), Check: "duplicate", Mention: bundle.IndexFile, Reject: tarscan.ErrDuplicate},
		{Name: "2 MiB PAX record", Data: PAXBomb(es, 2<<20), Check: "archive", Mention: "header", Reject: tarscan.ErrMalformed},
		{Name: "8 KiB name", Data: with(Reg(longName, []byte("x"))), Check: "path", Mention: "over 1024", Reject: tarscan.ErrUnsafePath},
		{Name: "unreferenced file", Data: with(Reg("notes.txt", []byte("hello"))), Check: "extra", Mention: "notes.txt"},
		{Name: "blob not named by digest", Data: with(Reg("blobs/sha256/notadigest", []byte("x"))), Check: "blob-digest", Mention: "blobs/sha256/notadigest"},
		{Name: "empty name", Data: with(Reg(".", []byte("x"))), Check: "path", Mention: "empty", Reject: tarscan.ErrUnsafePath},
		{Name: "140k empty entries, zstd", Data: Zstd(ManyEntries(140_000)), Check: "limit", Mention: "entries", Reject: tarscan.ErrLimit},
	}
}

// integrityCases keep the archive well-formed but break what it holds.
func integrityCases(f *Fixture) []Case {
	es := Entries(f.Tar)
	edit := func(name string, fn func([]byte) []byte) []byte {
		out := append([]Entry(nil), es...)
		i := Find(out, name)
		out[i].Data = fn(out[i].Data)
		return Tar(out)
	}
	drop := func(name string) []byte {
		out := append([]Entry(nil), es...)
		i := Find(out, name)
		return Tar(append(out[:i], out[i+1:]...))
	}
	flipLayer := edit(f.Layer, func(b []byte) []byte { return flip(b, len(b)/2) })
	// Flip a letter inside the config's JSON so it stays valid JSON.
	flipConfig := edit(f.Config, func(b []byte) []byte { return bytes.Replace(b, []byte("windows"), []byte("wiNdows"), 1) })
	flipManifest := edit(f.Manifest, func(b []byte) []byte { return bytes.Replace(b, []byte(`"size":`), []byte(`"size" :`), 1) })
	short := edit(f.Layer, func(b []byte) []byte { return b[:len(b)-10] })
	return []Case{
		{Name: "flipped bit in layer", Data: flipLayer, Check: "blob-digest", Mention: f.Layer},
		{Name: "flipped bit in layer, zstd", Data: Zstd(flipLayer), Check: "blob-digest", Mention: f.Layer},
		{Name: "flipped bit in config", Data: flipConfig, Check: "blob-digest", Mention: f.Config},
		{Name: "changed manifest", Data: flipManifest, Check: "blob-digest", Mention: f.Manifest},
		{Name: "layer shorter than its descriptor", Data: short, Check: "blob-size", Mention: f.Layer},
		{Name: "layer missing", Data: drop(f.Layer), Check: "missing", Mention: f.Layer},
		{Name: "config missing", Data: drop(f.Config), Check: "missing", Mention: f.Config},
		{Name: "manifest missing", Data: drop(f.Manifest), Check: "missing", Mention: f.Manifest},
		{Name: "wrong diff_id", Data: craftedImage(f, "diffid"), Check: "diff-id", Mention: "blobs/sha256/"},
		{Name: "corrupt gzip layer", Data: craftedImage(f, "badgzip"), Check: "diff-id", Mention: "gzip"},
		{Name: "layer neither gzip nor tar", Data: craftedImage(f, "raw"), Check: "diff-id", Mention: "neither gzip"},
		{Name: "gzip bomb layer", Data: craftedImage(f, "bomb"), Check: "diff-id", Mention: "expands too much"},
		{Name: "foreign layer left out without URLs", Data: craftedImage(f, "nourls"), Check: "foreign-layer", Mention: "no URLs"},
	}
}

// craftedImage writes a bundle of one image whose layer is broken in a way
// that keeps every digest right, so only the diff_id checks can catch it.
func craftedImage(f *Fixture, how string) []byte {
	good := GzipLayer(TarLayer(42, 4096))
	l := good
	switch how {
	case "diffid":
		l.DiffID = Hash([]byte("not the layer"))
	case "badgzip":
		l.Blob = append(bytes.Clone(good.Blob[:20]), bytes.Repeat([]byte{0xff}, 200)...)
	case "raw":
		l.Blob = bytes.Repeat([]byte("not a layer "), 100)
	case "bomb":
		l = Bomb(320)
	case "nourls":
		l = Foreign(good)
	}
	blobs := Blobs{}
	img := Image("docker.io/rancher/broken:1", "1", Win1809, []Layer{l}, blobs)
	return Write([]bundle.Image{img}, blobs, true)
}

// Bomb is a gzip layer of members 1 MiB members of zeros: tiny, and it
// expands past the 256 MiB verification floor.
func Bomb(members int) Layer {
	one := Gzip(make([]byte, 1<<20))
	return Layer{Blob: bytes.Repeat(one, members), DiffID: Hash(nil), MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip"}
}

// metadataCases break index.json, manifest.json and repositories.
func metadataCases(f *Fixture) []Case {
	es := Entries(f.Tar)
	replace := func(name string, data []byte) []byte {
		out := append([]Entry(nil), es...)
		out[Find(out, name)].Data = data
		return Tar(out)
	}
	editJSON := func(name string, fn func(v any) any) []byte { return Tar(EditJSON(es, name, fn)) }
	missingCfg := "blobs/sha256/" + strings.Repeat("0", 64)
	first := func(v any) map[string]any { return v.([]any)[0].(map[string]any) }
	indexEntry := func(v any) map[string]any { return v.(map[string]any)["manifests"].([]any)[0].(map[string]any) }
	bigJSON := append([]byte(`{"pad":"`), append(bytes.Repeat([]byte("x"), 8<<20), `"}`...)...)
	layerOnly := Tar([]Entry{es[Find(es, f.Layer)]})
	return []Case{
		{Name: "invalid index.json", Data: replace(bundle.IndexFile, []byte(`{"manifests":[`)), Check: "json", Mention: bundle.IndexFile},
		{Name: "invalid manifest.json", Data: replace(bundle.ManifestFile, []byte(`[{"Config":`)), Check: "json", Mention: bundle.ManifestFile},
		{Name: "invalid repositories", Data: replace(bundle.RepositoriesFile, []byte(`{"x":`)), Check: "json", Mention: bundle.RepositoriesFile},
		{Name: "invalid config JSON", Data: replace(f.Config, []byte(`{"os": windows}`)), Check: "json", Mention: f.Config},
		{Name: "8 MiB index.json", Data: replace(bundle.IndexFile, bigJSON), Check: "limit", Mention: bundle.IndexFile, Reject: tarscan.ErrLimit},
		{Name: "manifest.json config missing", Data: editJSON(bundle.ManifestFile, func(v any) any { first(v)["Config"] = missingCfg; return v }), Check: "missing", Mention: missingCfg},
		{Name: "manifest.json layer missing", Data: editJSON(bundle.ManifestFile, func(v any) any {
			first(v)["Layers"].([]any)[1] = "layers/missing.tar.gz"
			return v
		}), Check: "missing", Mention: "layers/missing.tar.gz"},
		{Name: "manifest.json RepoTags disagree", Data: editJSON(bundle.ManifestFile, func(v any) any {
			first(v)["RepoTags"] = []any{"rancher/other:1"}
			return v
		}), Check: "agree", Mention: "rancher/other:1"},
		{Name: "manifest.json layers reordered", Data: editJSON(bundle.ManifestFile, func(v any) any {
			ls := first(v)["Layers"].([]any)
			ls[1], ls[2] = ls[2], ls[1]
			return v
		}), Check: "agree", Mention: "Layers"},
		{Name: "repositories names unknown image", Data: editJSON(bundle.RepositoriesFile, func(v any) any {
			v.(map[string]any)["docker.io/rancher/ghost"] = map[string]any{"1": "abc"}
			return v
		}), Check: "agree", Mention: "rancher/ghost"},
		{Name: "index.json size wrong", Data: editJSON(bundle.IndexFile, func(v any) any {
			indexEntry(v)["size"] = indexEntry(v)["size"].(float64) + 1
			return v
		}), Check: "blob-size", Mention: f.Manifest},
		{Name: "index.json platform disagrees", Data: editJSON(bundle.IndexFile, func(v any) any {
			indexEntry(v)["platform"] = map[string]any{"os": "linux", "architecture": "arm64"}
			return v
		}), Check: "agree", Mention: "linux/arm64"},
		{Name: "no metadata at all", Data: layerOnly, Check: "archive", Mention: "no usable index.json"},
		{Name: "4 MiB manifest.json of 270k entries", Data: replace(bundle.ManifestFile, manyDockerEntries(4<<20)), Check: "limit", Mention: "problems"},
	}
}

// otherFormatCases are docker save (legacy) and crane archives, good and bad.
func otherFormatCases() []Case {
	blobs := Blobs{}
	l1, l2 := GzipLayer(TarLayer(5, 8192)), GzipLayer(TarLayer(6, 8192))
	img := Image("docker.io/rancher/legacy:1", "1", Win1809, []Layer{l1, l2}, blobs)
	crane := CraneArchive(img, blobs)
	ces := Entries(crane)
	craneLayer := Hash(l2.Blob).Hex + ".tar.gz"
	ces[Find(ces, craneLayer)].Data = flip(ces[Find(ces, craneLayer)].Data, 100)
	raw1 := TarLayer(5, 8192)
	legacy := LegacyArchive(img, [][]byte{raw1, TarLayer(6, 8192)})
	les := Entries(legacy)
	id := fmt.Sprintf("%064x", 1)
	les[Find(les, id+"/layer.tar")].Data = TarLayer(9, 8192)
	return []Case{
		{Name: "crane tarball", Data: crane, WantOK: true},
		{Name: "crane tarball, flipped layer", Data: Tar(ces), Check: "blob-digest", Mention: craneLayer},
		{Name: "docker save legacy", Data: legacy, WantOK: true},
		{Name: "docker save legacy, wrong layer", Data: Tar(les), Check: "diff-id", Mention: id + "/layer.tar"},
		{Name: "skopeo docker-archive", Data: SkopeoArchive(img, [][]byte{raw1, TarLayer(6, 8192)}), WantOK: true},
	}
}

// PAXBomb appends a PAX extended header of about size bytes, which
// archive/tar refuses to write, so it is patched in by hand.
func PAXBomb(entries []Entry, size int) []byte {
	record := "comment=" + strings.Repeat("x", size)
	n := len(record) + 2
	n += len(fmt.Sprint(n + len(fmt.Sprint(n))))
	body := fmt.Sprintf("%d %s\n", n, record)
	all := append(append([]Entry(nil), entries...), Reg("PaxHeaders/bomb", []byte(body)), Reg("after-bomb", []byte("x")))
	raw := Tar(all)
	at := bytes.Index(raw, []byte("PaxHeaders/bomb"))
	raw[at+156] = tar.TypeXHeader
	copy(raw[at+148:at+156], "        ")
	sum := 0
	for _, b := range raw[at : at+512] {
		sum += int(b)
	}
	copy(raw[at+148:at+156], fmt.Sprintf("%06o\x00 ", sum))
	return raw
}

// BigWindow compresses b with a 64 MiB zstd window, as `zstd --long=26` or
// klauspost's WithWindowSize(64<<20) do for big inputs. For small inputs the
// encoder shrinks the window to fit, so the frame header's window
// descriptor (RFC 8878 3.1.1.1.2) is set by hand: the decoder judges a
// frame by that header before decoding anything.
func BigWindow(b []byte) []byte {
	out := Zstd(b, zstd.WithWindowSize(64<<20), zstd.WithSingleSegment(false), zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if out[4]&0x20 != 0 {
		panic("single-segment frame has no window descriptor")
	}
	out[5] = (26 - 10) << 3 // 2^26 bytes
	return out
}

// HeaderOffset finds the 512-byte header of the entry named name, whose
// name field starts the block.
func HeaderOffset(tarBytes []byte, name string) int {
	for at := 0; at+512 <= len(tarBytes); at += 512 {
		if bytes.HasPrefix(tarBytes[at:], append([]byte(name), 0)) {
			return at
		}
	}
	panic("no header for " + name)
}

// ManyEntries is a tar of n empty files: megabytes compressed, and every
// entry costs a verifier memory unless it bounds them.
func ManyEntries(n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < n; i++ {
		_ = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f/%d", i), Typeflag: tar.TypeReg, Mode: 0o644})
	}
	_ = tw.Close()
	return buf.Bytes()
}

// manyDockerEntries is a manifest.json of up to size bytes naming a missing
// config again and again: every entry is a problem, and matching them
// against index.json must not take quadratic time.
func manyDockerEntries(size int) []byte {
	one := `{"Config":"x"},`
	n := (size - 2) / len(one)
	return []byte("[" + strings.TrimSuffix(strings.Repeat(one, n), ",") + "]")
}

// hardLinkLayer stores the layer under another name and makes its blob
// path a tar hard link to it, as some writers do for shared layers.
func hardLinkLayer(es []Entry, layer string) []byte {
	out := make([]Entry, 0, len(es)+1)
	for _, e := range es {
		if e.Hdr.Name != layer {
			out = append(out, e)
			continue
		}
		out = append(out, Reg("layers/shared.tar", e.Data),
			Entry{Hdr: tar.Header{Name: layer, Linkname: "layers/shared.tar", Typeflag: tar.TypeLink, Mode: 0o644}})
	}
	return Tar(out)
}
