package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/rancher/ferry/registry/platform"
)

// Names of the checks in an IndexReport.
const (
	CheckList           = "list"            // the reference is a list that parses
	CheckRequired       = "required"        // a required platform is present exactly once
	CheckKnownPlatform  = "known-platform"  // the entry names an os and architecture
	CheckUnique         = "unique"          // no other entry is for the same platform
	CheckManifest       = "manifest"        // the child manifest can be fetched
	CheckDigest         = "digest"          // ... and hashes to the entry's digest
	CheckSize           = "size"            // ... and has the entry's size
	CheckMediaType      = "media-type"      // ... and is served as the entry's media type
	CheckConfigPlatform = "config-platform" // the config agrees with the entry's platform
	CheckBlob           = "blob"            // the config or a layer is in the repository
	CheckForeignURLs    = "foreign-urls"    // a foreign layer has https URLs to fetch it from
)

// Check is one verification and its result.
type Check struct {
	Name string `json:"check"`
	// Platform and Digest identify the list entry checked; both are empty
	// for checks of the list as a whole.
	Platform string `json:"platform,omitempty"`
	Digest   string `json:"digest,omitempty"`
	// Subject is what else the check is about: a blob, a required platform.
	Subject string `json:"subject,omitempty"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail,omitempty"`
}

// IndexReport is the outcome of VerifyIndex: every check, passed or not.
type IndexReport struct {
	Reference string          `json:"reference"`
	Digest    v1.Hash         `json:"digest"`
	MediaType types.MediaType `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
	Checks    []Check         `json:"checks"`
	OK        bool            `json:"ok"`
	Problems  int             `json:"problems"`
}

// Failed returns the checks that did not pass.
func (r *IndexReport) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func (r *IndexReport) add(cs ...Check) {
	for _, c := range cs {
		r.Checks = append(r.Checks, c)
		if !c.OK {
			r.Problems++
		}
	}
	r.OK = r.Problems == 0
}

// VerifyIndex checks that the list at ref is complete and truthful: each
// required platform present once (Windows by build), every child
// fetchable and matching its entry, configs agreeing with the platforms
// claimed, all blobs present and foreign layers fetchable from https URLs.
// Problems with the list are in the report; the error is for failing to
// verify at all (bad reference, no list at ref, registry unreachable).
func (c *Client) VerifyIndex(ctx context.Context, ref string, required []platform.Target) (*IndexReport, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	rr, err := c.newRepoReader(ctx, r.Context())
	if err != nil {
		return nil, err
	}
	f, err := rr.manifest(ctx, r.Identifier())
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	digest, _, _ := v1.SHA256(bytes.NewReader(f.body))
	report := &IndexReport{Reference: r.String(), Digest: digest, MediaType: f.contentType, OK: true}
	idx, check := parseList(f, digest, r.Identifier())
	report.add(check)
	if idx == nil {
		return report, nil
	}
	report.Manifests = idx.Manifests
	for _, t := range required {
		report.add(requiredCheck(idx, t))
	}
	report.add(platformChecks(idx)...)
	perEntry := make([][]Check, len(idx.Manifests))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.jobs)
	for i, d := range idx.Manifests {
		g.Go(func() (err error) {
			perEntry[i], err = verifyEntry(gctx, rr, d)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	for _, cs := range perEntry {
		report.add(cs...)
	}
	return report, nil
}

// parseList checks the list itself; a nil index means there are no
// entries to go on with.
func parseList(f *fetched, digest v1.Hash, id string) (*v1.IndexManifest, Check) {
	ck := Check{Name: CheckList, OK: true}
	if want, err := v1.NewHash(id); err == nil && want != digest {
		ck.OK, ck.Detail = false, fmt.Sprintf("served bytes hash to %s", digest)
		return nil, ck
	}
	if !f.contentType.IsIndex() {
		ck.OK, ck.Detail = false, fmt.Sprintf("%s: media type %s", ErrNotIndex, f.contentType)
		return nil, ck
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(f.body))
	if err != nil {
		ck.OK, ck.Detail = false, fmt.Sprintf("parsing: %v", err)
		return nil, ck
	}
	if idx.MediaType != "" && idx.MediaType != f.contentType {
		ck.OK, ck.Detail = false, fmt.Sprintf("served as %s but says mediaType %s", f.contentType, idx.MediaType)
	} else {
		ck.Detail = fmt.Sprintf("%d entries", len(idx.Manifests))
	}
	return idx, ck
}

// requiredCheck wants exactly one entry for t; Windows entries must carry
// an os.version of t's build, as a puller on that host will look for it.
func requiredCheck(idx *v1.IndexManifest, t platform.Target) Check {
	ck := Check{Name: CheckRequired, Subject: t.String()}
	var hits, unversioned []string
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		switch t.Match(*d.Platform) {
		case platform.MatchExact:
			hits = append(hits, d.Platform.String()+" "+d.Digest.String())
		case platform.MatchNoOSVersion:
			unversioned = append(unversioned, d.Digest.String())
		}
	}
	switch len(hits) {
	case 1:
		ck.OK, ck.Detail = true, hits[0]
	case 0:
		ck.Detail = "missing; the list has " + platform.Describe(idx)
		if len(unversioned) > 0 {
			ck.Detail += fmt.Sprintf("; entries without os.version: %s", strings.Join(unversioned, ", "))
		}
	default:
		ck.Detail = fmt.Sprintf("present %d times: %s", len(hits), strings.Join(hits, "; "))
	}
	return ck
}

// platformChecks flags entries a puller cannot select: no platform, an
// unknown one, or one shared with another entry.
func platformChecks(idx *v1.IndexManifest) []Check {
	count := map[string]int{}
	for _, d := range idx.Manifests {
		if knownPlatform(d.Platform) {
			count[platformKey(d.Platform)]++
		}
	}
	var out []Check
	for _, d := range idx.Manifests {
		known := Check{Name: CheckKnownPlatform, Platform: entryPlatform(d), Digest: d.Digest.String(), OK: knownPlatform(d.Platform)}
		if !known.OK {
			known.Detail = "entry has no usable platform (os and architecture)"
			out = append(out, known)
			continue
		}
		out = append(out, known)
		uniq := Check{Name: CheckUnique, Platform: known.Platform, Digest: known.Digest, OK: count[platformKey(d.Platform)] == 1}
		if !uniq.OK {
			uniq.Detail = fmt.Sprintf("%d entries are for %s", count[platformKey(d.Platform)], platformKeyString(d.Platform))
		}
		out = append(out, uniq)
	}
	return out
}

func knownPlatform(p *v1.Platform) bool {
	return p != nil && p.OS != "" && p.Architecture != "" && p.OS != "unknown" && p.Architecture != "unknown"
}

func entryPlatform(d v1.Descriptor) string {
	if d.Platform == nil {
		return "(none)"
	}
	return d.Platform.String()
}

// platformKeyString is platformKey for people: the build, not the revision.
func platformKeyString(p *v1.Platform) string {
	q := *p
	if b, ok := platform.BuildOf(q.OSVersion); ok {
		q.OSVersion = b
	}
	return q.String()
}

// verifyEntry fetches one child and checks it against its entry. Only
// failing to talk to the registry is an error; all else is a Check.
func verifyEntry(ctx context.Context, rr *repoReader, d v1.Descriptor) ([]Check, error) {
	e := entryChecker{platform: entryPlatform(d), digest: d.Digest.String()}
	f, err := rr.manifest(ctx, d.Digest.String())
	if err != nil {
		if !isProblem(err) {
			return nil, err
		}
		e.add(CheckManifest, "", false, err.Error())
		return e.checks, nil
	}
	e.add(CheckManifest, "", true, "")
	got, size, _ := v1.SHA256(bytes.NewReader(f.body))
	e.add(CheckDigest, "", got == d.Digest, mismatch("digest", d.Digest.String(), got.String()))
	e.add(CheckSize, "", size == d.Size, mismatch("size", fmt.Sprint(d.Size), fmt.Sprint(size)))
	e.add(CheckMediaType, "", mediaTypeOK(f, d.MediaType), mediaTypeDetail(f, d.MediaType))
	if !f.contentType.IsImage() {
		return e.checks, nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(f.body))
	if err != nil {
		e.add(CheckManifest, "", false, "parsing: "+err.Error())
		return e.checks, nil
	}
	if err := e.config(ctx, rr, m.Config, d.Platform); err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if err := e.layer(ctx, rr, l); err != nil {
			return nil, err
		}
	}
	return e.checks, nil
}

type entryChecker struct {
	platform, digest string
	checks           []Check
}

func (e *entryChecker) add(name, subject string, ok bool, detail string) {
	if ok && name != CheckConfigPlatform {
		detail = ""
	}
	e.checks = append(e.checks, Check{Name: name, Platform: e.platform, Digest: e.digest, Subject: subject, OK: ok, Detail: detail})
}

// config fetches the config (so also proves the blob is there) and
// compares its platform with the entry's.
func (e *entryChecker) config(ctx context.Context, rr *repoReader, d v1.Descriptor, want *v1.Platform) error {
	raw, err := rr.blob(ctx, d.Digest)
	if err != nil {
		if !isProblem(err) {
			return err
		}
		e.add(CheckBlob, "config "+d.Digest.String(), false, err.Error())
		return nil
	}
	e.add(CheckBlob, "config "+d.Digest.String(), true, "")
	var cf v1.ConfigFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		e.add(CheckConfigPlatform, "", false, "parsing config: "+err.Error())
		return nil
	}
	ok, detail := comparePlatform(want, configPlatform(&cf))
	e.add(CheckConfigPlatform, "", ok, detail)
	return nil
}

// layer checks a layer is in the repository, or for a foreign one, that
// pullers can fetch it from https URLs (containerd and Windows do).
func (e *entryChecker) layer(ctx context.Context, rr *repoReader, l v1.Descriptor) error {
	if !l.MediaType.IsDistributable() {
		ok, detail := foreignURLsOK(l.URLs)
		e.add(CheckForeignURLs, l.Digest.String(), ok, detail)
		return nil
	}
	err := rr.headBlob(ctx, l.Digest)
	if err != nil && !isProblem(err) {
		return err
	}
	detail := ""
	if err != nil {
		detail = err.Error()
	}
	e.add(CheckBlob, l.Digest.String(), err == nil, detail)
	return nil
}

func foreignURLsOK(urls []string) (bool, string) {
	if len(urls) == 0 {
		return false, "foreign layer without URLs: no puller can fetch it"
	}
	for _, s := range urls {
		if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
			return false, fmt.Sprintf("URL %q is not https", s)
		}
	}
	return true, ""
}

// comparePlatform matches os, architecture, variant and the Windows build;
// revisions may differ, as a patched image keeps its list entry's build.
func comparePlatform(want *v1.Platform, got v1.Platform) (bool, string) {
	if want == nil {
		return false, "entry has no platform; config says " + got.String()
	}
	var diffs []string
	if want.OS != got.OS {
		diffs = append(diffs, fmt.Sprintf("os %q in the list, %q in the config", want.OS, got.OS))
	}
	if want.Architecture != got.Architecture {
		diffs = append(diffs, fmt.Sprintf("architecture %q in the list, %q in the config", want.Architecture, got.Architecture))
	}
	if platform.NormalVariant(*want) != platform.NormalVariant(got) {
		diffs = append(diffs, fmt.Sprintf("variant %q in the list, %q in the config", want.Variant, got.Variant))
	}
	if versionKey(want.OSVersion) != versionKey(got.OSVersion) {
		diffs = append(diffs, fmt.Sprintf("os.version %q in the list, %q in the config", want.OSVersion, got.OSVersion))
	}
	if len(diffs) > 0 {
		return false, strings.Join(diffs, "; ")
	}
	return true, got.String()
}

func versionKey(v string) string {
	if b, ok := platform.BuildOf(v); ok {
		return b
	}
	return v
}

func mediaTypeOK(f *fetched, want types.MediaType) bool {
	return f.contentType == want && (bodyMediaType(f.body) == "" || bodyMediaType(f.body) == want)
}

func mediaTypeDetail(f *fetched, want types.MediaType) string {
	if body := bodyMediaType(f.body); body != "" && body != want {
		return fmt.Sprintf("entry says %s, manifest says %s", want, body)
	}
	return mismatch("media type", string(want), string(f.contentType))
}

// bodyMediaType is the manifest's own mediaType field, if any.
func bodyMediaType(body []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	_ = json.Unmarshal(body, &m)
	return m.MediaType
}

func mismatch(what, want, got string) string {
	return fmt.Sprintf("%s %s in the list, %s served", what, want, got)
}
